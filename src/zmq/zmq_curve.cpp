#include "foxml/events/zmq_curve.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace foxml::events {
namespace {

constexpr std::size_t z85_key_size = 40;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("foxml::events: CURVE key file '" + path + "': " + what);
}

bool valid_z85_key(std::string_view text) {
  if (text.size() != z85_key_size) return false;
  std::uint8_t raw[32];
  const std::string copy(text);
  return zmq_z85_decode(raw, copy.c_str()) != nullptr;
}

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// Reads a whole (small) file; `private_file`: refuse it when group or others may read it.
std::string read_small_file(const std::string& path, bool private_file) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  if (private_file && (st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    fail(path, std::string("holds a secret key but has mode ") + mode +
                   "; it must be readable by its owner only (chmod 600)");
  }
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > (1u << 20)) break;  // no key file is this large; the parse below refuses it
  }
  ::close(fd);
  return text;
}

// One line of a key file: `name = "value"`; returns false for anything else.
bool parse_assignment(std::string_view line, std::string_view& name, std::string_view& value) {
  const std::size_t eq = line.find('=');
  if (eq == std::string_view::npos) return false;
  // A bare Z85 key may hold '=' too: only a quoted value makes an assignment.
  const std::string_view quoted = trim(line.substr(eq + 1));
  if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') return false;
  name = trim(line.substr(0, eq));
  value = quoted.substr(1, quoted.size() - 2);
  return true;
}

// The keys named public-key / secret-key in a key file's text; other lines (zcert's comments and
// section headers) are skipped.
void parse_key_text(const std::string& path, const std::string& text, std::string* public_key,
                    std::string* secret_key) {
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    std::string_view name, value;
    if (line.empty() || line.front() == '#' || !parse_assignment(line, name, value)) continue;
    std::string* target = name == "public-key" ? public_key : name == "secret-key" ? secret_key : nullptr;
    if (target == nullptr) continue;
    if (!valid_z85_key(value)) fail(path, std::string(name) + " is not a Z85 key (40 characters)");
    *target = std::string(value);
  }
}

}  // namespace

curve_keypair curve_generate_keypair() {
  char public_key[z85_key_size + 1], secret_key[z85_key_size + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    throw std::runtime_error(std::string("foxml::events: this libzmq cannot make CURVE keys: ") +
                             zmq_strerror(zmq_errno()));
  }
  return {public_key, secret_key};
}

void write_curve_key_file(const std::string& path, const curve_keypair& keys) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) fail(path, std::string("cannot create it: ") + std::strerror(errno));
  const std::string text = "public-key = \"" + keys.public_key + "\"\nsecret-key = \"" + keys.secret_key + "\"\n";
  const bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int saved = errno;
  ::close(fd);
  if (!ok) fail(path, std::string("cannot write it: ") + std::strerror(saved));
}

curve_keypair read_curve_key_file(const std::string& path) {
  const std::string text = read_small_file(path, true);
  curve_keypair keys;
  parse_key_text(path, text, &keys.public_key, &keys.secret_key);
  if (keys.public_key.empty() || keys.secret_key.empty()) {
    fail(path, "needs two lines, public-key = \"<z85>\" and secret-key = \"<z85>\" (events-proxy keygen FILE "
               "writes one)");
  }
  char derived[z85_key_size + 1];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived) {
    fail(path, "its public-key does not belong to its secret-key");
  }
  return keys;
}

std::string read_curve_public_key(const std::string& z85_or_path) {
  // Z85 holds '/' and '.', so a key and a path look alike: an existing file wins.
  struct stat st {};
  if (valid_z85_key(z85_or_path) && ::stat(z85_or_path.c_str(), &st) != 0) return z85_or_path;
  const std::string text = read_small_file(z85_or_path, false);
  std::string public_key;
  parse_key_text(z85_or_path, text, &public_key, nullptr);
  if (public_key.empty() && valid_z85_key(trim(text))) public_key = std::string(trim(text));
  if (public_key.empty()) {
    fail(z85_or_path, "is neither a Z85 public key (40 characters) nor a file with a public-key = \"<z85>\" line");
  }
  return public_key;
}

std::vector<std::string> read_curve_authorized(const std::string& file_or_directory) {
  std::vector<std::string> keys;
  struct stat st {};
  if (::stat(file_or_directory.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    DIR* dir = ::opendir(file_or_directory.c_str());
    if (dir == nullptr) fail(file_or_directory, std::strerror(errno));
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".pub") == 0) names.push_back(name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) keys.push_back(read_curve_public_key(file_or_directory + "/" + name));
  } else {
    const std::string text = read_small_file(file_or_directory, false);
    std::string_view rest = text;
    int number = 0;
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      const std::string_view line = trim(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      ++number;
      if (line.empty() || line.front() == '#') continue;
      std::string_view name, value = line;
      if (parse_assignment(line, name, value) && name != "public-key") value = {};
      if (!valid_z85_key(value)) {
        fail(file_or_directory, "line " + std::to_string(number) + " is not a Z85 public key (40 characters)");
      }
      keys.emplace_back(value);
    }
  }
  if (keys.empty()) fail(file_or_directory, "lists no public key (one per line, or *.pub files in a directory)");
  return keys;
}

void apply_curve_client(zmq::socket_t& socket, const curve_settings& settings) {
  if (!settings.enabled()) return;
  if (settings.server_key.empty() || settings.keys.empty()) {
    throw std::invalid_argument(
        "foxml::events: CURVE needs both the server's public key (curve_server_key) and this side's key file "
        "(curve_keys), or neither");
  }
  const std::string server = read_curve_public_key(settings.server_key);
  const curve_keypair own = read_curve_key_file(settings.keys);
  socket.set(zmq::sockopt::curve_serverkey, server);
  socket.set(zmq::sockopt::curve_publickey, own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_key);
}

void apply_curve_server(zmq::socket_t& socket, const curve_keypair& keys) {
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  // Names the ZAP domain so a ZAP handler is asked for every connection.
  socket.set(zmq::sockopt::zap_domain, "foxml-events");
}

struct curve_authorizer::impl {
  zmq::socket_t socket;
  std::vector<std::string> authorized;  // binary, 32 bytes each
  bool any_client;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> admitted{0}, refused{0};
  std::thread thread;

  impl(zmq::context_t& context, bool any) : socket(context, zmq::socket_type::rep), any_client(any) {}

  void run() {
    std::vector<zmq::message_t> request;
    while (!stop.load(std::memory_order_acquire)) {
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      try {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
        request.clear();
        if (!zmq::recv_multipart(socket, std::back_inserter(request), zmq::recv_flags::dontwait)) continue;
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        return;  // the context is ending
      }
      // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
      bool ok = false;
      if (request.size() >= 7 && request[5].to_string_view() == "CURVE" && request[6].size() == 32) {
        const std::string key = request[6].to_string();
        ok = any_client || std::find(authorized.begin(), authorized.end(), key) != authorized.end();
      }
      (ok ? admitted : refused).fetch_add(1, std::memory_order_relaxed);
      const std::string request_id = request.size() >= 2 ? request[1].to_string() : std::string();
      std::array<zmq::const_buffer, 6> reply = {zmq::str_buffer("1.0"), zmq::buffer(request_id),
                                                ok ? zmq::str_buffer("200") : zmq::str_buffer("400"),
                                                ok ? zmq::str_buffer("OK") : zmq::str_buffer("key not authorized"),
                                                zmq::str_buffer(""), zmq::str_buffer("")};
      try {
        zmq::send_multipart(socket, reply);
      } catch (const zmq::error_t&) {
        return;
      }
    }
  }
};

curve_authorizer::curve_authorizer(zmq::context_t& context, std::vector<std::string> authorized, bool any_client)
    : impl_(std::make_unique<impl>(context, any_client)) {
  for (const std::string& key : authorized) {
    if (!valid_z85_key(key)) throw std::invalid_argument("foxml::events: '" + key + "' is not a Z85 public key");
    std::string raw(32, '\0');
    zmq_z85_decode(reinterpret_cast<std::uint8_t*>(raw.data()), key.c_str());
    impl_->authorized.push_back(std::move(raw));
  }
  impl_->socket.set(zmq::sockopt::linger, 0);
  impl_->socket.bind("inproc://zeromq.zap.01");
  impl_->thread = std::thread([this] { impl_->run(); });
}

curve_authorizer::~curve_authorizer() {
  impl_->stop.store(true, std::memory_order_release);
  impl_->thread.join();
  impl_->socket.close();
}

std::uint64_t curve_authorizer::admitted() const noexcept { return impl_->admitted.load(std::memory_order_relaxed); }
std::uint64_t curve_authorizer::refused() const noexcept { return impl_->refused.load(std::memory_order_relaxed); }

}  // namespace foxml::events
