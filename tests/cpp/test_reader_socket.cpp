// The Unix socket server: many emitters at once, acks of handled seqs, 0600 socket file, and a
// stale socket file replaced only when nobody listens.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "fixtures/reader_helpers.hpp"
#include "fixtures/unix_peer.hpp"
#include "foxml/events/reader/socket_source.hpp"

using namespace foxml::events::reader;

namespace {

using reader_test::connect_to;
using reader_test::send_all;

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

TEST_CASE("a stale socket file is replaced - a live listener is not - a regular file is left alone") {
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

namespace {
// Blocks until one byte comes through `fd` (a pipe between a forked child and its parent).
bool await_byte(int fd) {
  char c;
  return ::read(fd, &c, 1) == 1;
}
void put_byte(int fd) {
  const char c = 1;
  [[maybe_unused]] auto n = ::write(fd, &c, 1);
}
}  // namespace

TEST_CASE("out of file descriptors (EMFILE): the pending connection is refused and counted, no spinning, and "
          "a good emitter gets through once descriptors are free") {
  reader_test::temp_dir dir;
  const auto path = dir / "emfile.sock";
  int to_parent[2], to_child[2];
  REQUIRE(::pipe(to_parent) == 0);
  REQUIRE(::pipe(to_child) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child runs the source under a low descriptor limit, so nothing else in the test
    // process is starved. Its exit status carries the verdict: one bit per failed check.
    int verdict = 0;
    try {
      socket_source src(path);
      rlimit limit{};
      ::getrlimit(RLIMIT_NOFILE, &limit);
      limit.rlim_cur = 64;
      ::setrlimit(RLIMIT_NOFILE, &limit);
      std::vector<int> fillers;
      for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
      put_byte(to_parent[1]);
      await_byte(to_child[0]);  // a client is now pending on the listener
      // Each poll waits up to 200 ms when there is nothing to do; spinning on the pending
      // connection returns at once, thousands of times.
      int wakeups = 0;
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
      while (std::chrono::steady_clock::now() < until) {
        src.poll(std::chrono::milliseconds(200), [](const raw_line&) {});
        ++wakeups;
      }
      if (wakeups > 100) verdict |= 1;
      if (src.stats().refused_no_fds < 1) verdict |= 2;
      for (const int fd : fillers) ::close(fd);
      put_byte(to_parent[1]);
      event_stream stream;
      std::vector<stream_event> got;
      if (!reader_test::pump_until(src, stream, got, [&] { return !got.empty(); })) verdict |= 4;
    } catch (...) {
      verdict |= 8;
    }
    ::_exit(verdict);
  }
  REQUIRE(await_byte(to_parent[0]));
  const int refused = connect_to(path);  // pending in the backlog while the child has no descriptors
  put_byte(to_child[1]);
  REQUIRE(await_byte(to_parent[0]));
  const int good = connect_to(path);
  send_all(good, reader_test::line(0));
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  const int verdict = WEXITSTATUS(status);
  CHECK_MESSAGE((verdict & 1) == 0, "the source spun on the pending connection");
  CHECK_MESSAGE((verdict & 2) == 0, "the refused connection was not counted");
  CHECK_MESSAGE((verdict & 4) == 0, "the good emitter's line never arrived");
  CHECK_MESSAGE((verdict & 8) == 0, "the source threw");
  ::close(refused);
  ::close(good);
  for (const int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) ::close(fd);
}

TEST_CASE("partial lines across connections stay within max_partial_bytes: the biggest holder goes, counted") {
  reader_test::temp_dir dir;
  const auto path = dir / "budget.sock";
  socket_source_options options;
  options.max_partial_bytes = 4u << 20;
  socket_source src(path, options);
  event_stream stream;
  std::vector<stream_event> got;
  // 24 peers each start a 512 KiB line and never finish it: 12 MiB wanted, 4 MiB allowed.
  std::vector<int> hogs;
  const std::string chunk(512 * 1024, 'x');
  std::atomic<bool> sent{false};
  std::thread writer([&] {
    for (int i = 0; i < 24; ++i) {
      hogs.push_back(connect_to(path));
      const std::string start = "{\"event_type\":\"log\",\"run_id\":\"hog\",\"message\":\"";
      ::send(hogs.back(), start.data(), start.size(), MSG_NOSIGNAL);
      for (std::size_t done = 0; done < chunk.size();) {
        const auto n = ::send(hogs.back(), chunk.data() + done, chunk.size() - done, MSG_NOSIGNAL);
        if (n <= 0) break;  // closed by the server: that is the point
        done += static_cast<std::size_t>(n);
      }
    }
    sent = true;
  });
  CHECK(reader_test::pump_until(src, stream, got, [&] { return sent.load(); }, std::chrono::seconds(30)));
  writer.join();
  // The last hogs' bytes may still be in flight: wait (generously) for the server to catch up.
  const auto budget_held = [&] { return src.stats().over_budget >= 16 && src.stats().open <= 8; };
  reader_test::pump_until(src, stream, got, budget_held, std::chrono::seconds(10));
  CHECK(src.stats().over_budget >= 16);  // at most 8 of 24 fit in 4 MiB
  CHECK(src.stats().open <= 8);
  // A good emitter is unaffected.
  const int good = connect_to(path);
  send_all(good, reader_test::line(0) + reader_test::line(1));
  CHECK(reader_test::pump_until(src, stream, got, [&] { return got.size() == 2; }));
  ::close(good);
  for (const int fd : hogs) ::close(fd);
}

TEST_CASE("hostile peers (garbage, endless lines, 500 idle clients) never starve a good emitter") {
  reader_test::temp_dir dir;
  const auto path = dir / "hostile.sock";
  socket_source src(path);
  event_stream stream;
  std::vector<stream_event> got;
  // 500 idle clients: more than the listen backlog, so they connect while the source accepts.
  std::vector<int> idle;
  std::atomic<bool> connected{false};
  std::thread connector([&] {
    for (int i = 0; i < 500; ++i) idle.push_back(connect_to(path));
    connected = true;
  });
  CHECK(reader_test::pump_until(src, stream, got, [&] { return connected.load(); }, std::chrono::seconds(60)));
  connector.join();
  const int garbage = connect_to(path), endless = connect_to(path), good = connect_to(path);
  std::atomic<bool> stop{false};
  std::thread hostile([&] {
    std::mt19937 rng(7);
    std::string noise(4096, '\0');
    const std::string no_newline(64 * 1024, 'y');
    while (!stop) {
      for (auto& c : noise) c = static_cast<char>(rng());
      ::send(garbage, noise.data(), noise.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::send(endless, no_newline.data(), no_newline.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::yield();
    }
  });
  std::thread emitter([&] {
    for (std::uint64_t s = 0; s < 1000; ++s) send_all(good, reader_test::line(s, "good"));
  });
  std::set<std::uint64_t> good_seqs;
  CHECK(reader_test::pump_until(src, stream, got, [&] {
    for (const auto& e : got) {
      if (e.value.run_id == "good") good_seqs.insert(e.value.seq);
    }
    got.clear();
    return good_seqs.size() == 1000;
  }, std::chrono::seconds(60)));
  // The good emitter can finish before the hostile thread is first scheduled (a loaded machine):
  // keep the noise coming until some of it has been counted.
  CHECK(reader_test::pump_until(src, stream, got, [&] { return stream.stats().malformed > 0; },
                                std::chrono::seconds(60)));
  stop = true;
  hostile.join();
  emitter.join();
  CHECK(good_seqs.size() == 1000);
  CHECK(stream.stats().malformed > 0);  // the garbage and the cut endless lines, counted
  CHECK(src.stats().open >= 500);
  for (const int fd : idle) ::close(fd);
  for (const int fd : {garbage, endless, good}) ::close(fd);
}
