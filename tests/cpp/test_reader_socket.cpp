// The Unix socket server: many emitters at once, acks of handled seqs, 0600 socket file, and a
// stale socket file replaced only when nobody listens.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "foxml/events/reader/socket_source.hpp"

using namespace foxml::events::reader;

namespace {

int connect_to(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

void send_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    done += static_cast<std::size_t>(n);
  }
}

// Reads acks until `{"ack_seq":want}` arrives (the server is pumped by the caller's thread).
bool wait_ack(int fd, std::uint64_t want) {
  std::string buffer;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string needle = "{\"ack_seq\":" + std::to_string(want) + "}\n";
  char chunk[4096];
  while (buffer.find(needle) == std::string::npos) {
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

TEST_CASE("many emitters at once: every line delivered once, each connection acked up to its last seq") {
  reader_test::temp_dir dir;
  const auto path = dir / "run/events.sock";
  socket_source src(path);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir / "run").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  constexpr int emitters = 8, per_emitter = 2000;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < emitters; ++p) {
    threads.emplace_back([&, p] {
      const int fd = connect_to(path);
      std::string batch;
      for (int s = 0; s < per_emitter; ++s) {
        batch += reader_test::line(static_cast<std::uint64_t>(s), "r", "heartbeat", 100 + p);
        if (batch.size() > 8192 || s + 1 == per_emitter) {
          send_all(fd, batch);
          batch.clear();
        }
      }
      if (wait_ack(fd, per_emitter - 1)) ++acked;
      ::close(fd);
    });
  }
  event_stream stream;
  std::vector<stream_event> got;
  CHECK(reader_test::pump_until(src, stream, got, [&] { return acked == emitters; }, std::chrono::seconds(30)));
  for (auto& t : threads) t.join();
  CHECK(got.size() == emitters * per_emitter);
  std::set<std::pair<std::int64_t, std::uint64_t>> unique;
  for (const auto& e : got) unique.emplace(e.value.pid, e.value.seq);
  CHECK(unique.size() == emitters * per_emitter);
  CHECK(stream.stats().gaps == 0);
  CHECK(stream.stats().malformed == 0);
  CHECK(src.stats().accepted == emitters);
  CHECK(src.stats().acks >= emitters);
}

TEST_CASE("a line split across writes and a malformed line on one connection") {
  reader_test::temp_dir dir;
  const auto path = dir / "s.sock";
  socket_source src(path);
  const int fd = connect_to(path);
  const auto first = reader_test::line(0), second = reader_test::line(1);
  send_all(fd, first + "not json\n" + second.substr(0, 30));
  event_stream stream;
  std::vector<stream_event> got;
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 1 && stream.stats().malformed == 1; }));
  send_all(fd, second.substr(30));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 2; }));
  std::thread pump([&] { reader_test::pump_until(src, stream, got, [&] { return false; }, std::chrono::milliseconds(300)); });
  CHECK(wait_ack(fd, 1));
  pump.join();
  ::close(fd);
}

TEST_CASE("a stale socket file is replaced; a live listener is not; a regular file is left alone") {
  reader_test::temp_dir dir;
  const auto path = dir / "stale.sock";
  {
    // A listener that died without cleaning up: bind, never remove.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  socket_source src(path);
  CHECK_THROWS_AS(socket_source{path}, std::system_error);
  const auto plain = dir / "plain";
  reader_test::append(plain, "keep me\n");
  CHECK_THROWS_AS(socket_source{plain}, std::system_error);
  struct stat st {};
  REQUIRE(::stat(plain.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
}
