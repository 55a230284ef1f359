// events-proxy: libzmq's own proxy between many emitting ranks and their subscribers (issue 12).
// Two zmq_proxy_steerable instances, one per direction: events (XSUB emitters -> XPUB
// subscribers) and commands (XSUB senders -> XPUB emitters), each with a PAIR control socket for
// STATISTICS and TERMINATE. Nothing is parsed on the way; the optional capture writes the events
// the proxy forwards to a JSONL file from zmq_proxy's capture socket.
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "foxml/events/zmq_curve.hpp"
#include "foxml/events/zmq_topic.hpp"

namespace {

using json = nlohmann::ordered_json;

// What libzmq's STATISTICS reply holds, in its order: the front socket's counters, then the
// back socket's. A multipart message counts once.
constexpr const char* stat_names[] = {"msg_in", "bytes_in", "msg_out", "bytes_out"};

class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// One direction: front XSUB -> back XPUB, run by zmq_proxy_steerable on a thread of its own.
class direction {
 public:
  direction(zmq::context_t& ctx, std::string name, const std::string& front, const std::string& back, int hwm,
            bool lossless, zmq::socket_t* capture, const foxml::events::curve_keypair* curve)
      : name_(std::move(name)),
        front_(ctx, zmq::socket_type::xsub),
        back_(ctx, zmq::socket_type::xpub),
        control_(ctx, zmq::socket_type::pair),
        steer_(ctx, zmq::socket_type::pair),
        capture_(capture) {
    const std::string control_endpoint = "inproc://events-proxy-control-" + name_;
    for (zmq::socket_t* s : {&front_, &back_}) s->set(zmq::sockopt::linger, 0);
    front_.set(zmq::sockopt::rcvhwm, hwm);
    back_.set(zmq::sockopt::sndhwm, hwm);
    // A subscriber at its high-water mark makes the proxy wait rather than lose the message
    // unseen: the wait reaches the emitters, whose refused sends are counted drops.
    if (lossless) back_.set(zmq::sockopt::xpub_nodrop, true);
    if (curve != nullptr) {
      foxml::events::apply_curve_server(front_, *curve);
      foxml::events::apply_curve_server(back_, *curve);
    }
    control_.bind(control_endpoint);
    steer_.connect(control_endpoint);
    steer_.set(zmq::sockopt::rcvtimeo, 1000);
    bind(front_, front);
    bind(back_, back);
  }

  // Subscribes the front socket to everything: publishers connecting to it then see a
  // subscription at once (a connecting sink sends nothing before one), and the capture gets every
  // event whether or not a subscriber is up. Subscribers' own filters apply on the back socket.
  void subscribe_to_everything() {
    const unsigned char subscribe_all = 1;
    front_.send(zmq::const_buffer(&subscribe_all, 1), zmq::send_flags::none);
  }

  void start() {
    thread_ = std::thread([this] {
      try {
        zmq::proxy_steerable(front_, back_, capture_ ? zmq::socket_ref(*capture_) : zmq::socket_ref(),
                             zmq::socket_ref(control_));
      } catch (const zmq::error_t&) {
        // ETERM: the context was shut down because TERMINATE could not get through in time.
      }
      done_.store(true, std::memory_order_release);
    });
  }

  // The counters as JSON, or null when the proxy did not answer within a second (blocked on a
  // subscriber at its high-water mark). A late answer is discarded by the next query.
  json statistics() {
    zmq::message_t stale;
    while (steer_.recv(stale, zmq::recv_flags::dontwait)) {
    }
    steer_.send(zmq::str_buffer("STATISTICS"), zmq::send_flags::none);
    std::uint64_t values[8] = {};
    for (std::uint64_t& value : values) {
      zmq::message_t part;
      if (!steer_.recv(part) || part.size() != sizeof(value)) return nullptr;
      std::memcpy(&value, part.data(), sizeof(value));
    }
    json front, back;
    for (int i = 0; i < 4; ++i) {
      front[stat_names[i]] = values[i];
      back[stat_names[i]] = values[4 + i];
    }
    json out;
    out[front_role_] = std::move(front);
    out[back_role_] = std::move(back);
    return out;
  }

  void terminate() { steer_.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::dontwait); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  void set_roles(const char* front_role, const char* back_role) {
    front_role_ = front_role;
    back_role_ = back_role;
  }

 private:
  static void bind(zmq::socket_t& socket, const std::string& endpoint) {
    try {
      socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error("cannot bind '" + endpoint + "': " + e.what());
    }
  }

  std::string name_;
  zmq::socket_t front_, back_, control_, steer_;
  zmq::socket_t* capture_;
  const char* front_role_ = "front";
  const char* back_role_ = "back";
  std::thread thread_;
  std::atomic<bool> done_{false};
};

// Writes the events the proxy forwards, one JSON line each, from the capture socket. Subscription
// messages (one frame, travelling the other way) are skipped.
class capture_writer {
 public:
  capture_writer(zmq::context_t& ctx, const std::string& path)
      : proxy_side_(ctx, zmq::socket_type::pair), reader_(ctx, zmq::socket_type::pair) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw std::runtime_error("cannot open the capture file '" + path + "': " + std::strerror(errno));
    fd_ = fd;
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
      ::close(fd_);
      throw std::runtime_error("the capture file '" + path +
                               "' must be a regular file of this user, readable by nobody else (0600)");
    }
    // The proxy blocks on a full capture pipe rather than losing lines: the disk paces it.
    proxy_side_.set(zmq::sockopt::sndhwm, 0);
    reader_.set(zmq::sockopt::rcvhwm, 0);
    reader_.bind("inproc://events-proxy-capture");
    proxy_side_.connect("inproc://events-proxy-capture");
  }
  ~capture_writer() {
    if (fd_ >= 0) ::close(fd_);
  }

  zmq::socket_t& proxy_side() { return proxy_side_; }

  void start() {
    thread_ = std::thread([this] {
      try {
        run();
      } catch (const zmq::error_t&) {
        flush();  // the context was shut down (a proxy stuck past the grace period)
      }
    });
  }
  // Called once the proxy that feeds it has returned: writes what is left, then ends.
  void stop() {
    stop_.store(true, std::memory_order_release);
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }
  std::uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  void run() {
    std::vector<zmq::message_t> parts;
    for (;;) {
      const bool stopping = stop_.load(std::memory_order_acquire);
      zmq::pollitem_t item{reader_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(stopping ? 0 : 100));
      if (!(item.revents & ZMQ_POLLIN)) {
        flush();
        if (stopping) return;
        continue;
      }
      parts.clear();
      do {
        parts.emplace_back();
        if (!reader_.recv(parts.back(), zmq::recv_flags::dontwait)) break;
      } while (parts.back().more());
      if (parts.size() == 2) {
        buffer_.append(parts[1].data<char>(), parts[1].size());
        buffer_ += '\n';
        lines_.fetch_add(1, std::memory_order_relaxed);
        if (buffer_.size() >= (1u << 16)) flush();
      }
    }
  }

  // Only whole lines reach write(); a short write is continued, never left half a line.
  void flush() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  zmq::socket_t proxy_side_, reader_;
  int fd_ = -1;
  std::string buffer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> lines_{0};
  std::atomic<std::uint64_t> write_errors_{0};
};

void print_statistics(direction& events, direction& commands, const capture_writer* capture,
                      const foxml::events::curve_authorizer* curve) {
  json line;
  line["events"] = events.statistics();
  line["commands"] = commands.statistics();
  if (curve != nullptr) {
    line["curve_admitted"] = curve->admitted();
    line["curve_refused"] = curve->refused();
  }
  if (capture != nullptr) {
    line["captured"] = capture->lines();
    line["capture_write_errors"] = capture->write_errors();
  }
  std::fprintf(stderr, "events-proxy: %s\n", line.dump().c_str());
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "events-proxy: forwards training events from many emitters (XSUB) to subscribers (XPUB) and control "
      "commands back, with libzmq's zmq_proxy_steerable. Emitters use zmq+tcp://HOST:5556, subscribers "
      "tcp://HOST:5558. Statistics go to stderr as one JSON line every --stats-interval seconds, on SIGUSR1 "
      "and at exit."};
  std::string emitters = "tcp://*:5556";
  std::string subscribers = "tcp://*:5558";
  std::string emitter_commands, sender_commands, capture_path;
  double stats_interval = 10.0;
  int hwm = 100000;
  bool lossy = false;
  app.add_option("--emitters", emitters, "Endpoint emitters connect to (XSUB); commands to them go out on its +1")
      ->capture_default_str();
  app.add_option("--subscribers", subscribers,
                 "Endpoint subscribers connect to (XPUB); command senders use its +1")
      ->capture_default_str();
  app.add_option("--emitter-commands", emitter_commands, "Command endpoint for emitters (default: --emitters +1)");
  app.add_option("--sender-commands", sender_commands, "Command endpoint for senders (default: --subscribers +1)");
  app.add_option("--capture", capture_path, "Append every forwarded event to this JSONL file (created 0600)");
  app.add_option("--stats-interval", stats_interval, "Seconds between statistics lines on stderr (0: only on "
                                                     "SIGUSR1 and at exit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--hwm", hwm, "High-water mark (messages) of each proxy socket")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_flag("--lossy-subscribers", lossy,
               "Let a subscriber at its high-water mark lose messages (uncounted) instead of making the proxy wait");
  std::string curve_keys, curve_authorized, keygen_path;
  bool curve_any_client = false;
  app.add_option("--curve-keys", curve_keys,
                 "This proxy's CURVE key file (0600; `events-proxy keygen FILE` writes one): all four sockets become "
                 "CURVE servers");
  app.add_option("--curve-authorized", curve_authorized,
                 "File of client public keys (one per line) or a directory of *.pub files: only these get in");
  app.add_flag("--curve-any-client", curve_any_client,
               "With --curve-keys and no --curve-authorized: admit any client key (encryption only, no access control)");
  CLI::App* keygen = app.add_subcommand("keygen", "Write a new CURVE keypair to FILE (created 0600) and print its "
                                                  "public key");
  keygen->add_option("FILE", keygen_path, "The key file to create")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  if (keygen->parsed()) {
    try {
      const foxml::events::curve_keypair keys = foxml::events::curve_generate_keypair();
      foxml::events::write_curve_key_file(keygen_path, keys);
      std::printf("%s\n", keys.public_key.c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "events-proxy: %s\n", e.what());
      return 1;
    }
  }
  if (curve_keys.empty() && (!curve_authorized.empty() || curve_any_client)) {
    std::fprintf(stderr, "events-proxy: --curve-authorized and --curve-any-client need --curve-keys\n");
    return 1;
  }
  if (!curve_keys.empty() && curve_authorized.empty() && !curve_any_client) {
    std::fprintf(stderr,
                 "events-proxy: --curve-keys needs --curve-authorized FILE_OR_DIR: a CURVE server that admits any "
                 "key only encrypts, anyone may still publish, subscribe and send commands; give "
                 "--curve-any-client to want exactly that\n");
    return 1;
  }
  if (!curve_authorized.empty() && curve_any_client) {
    std::fprintf(stderr, "events-proxy: give --curve-authorized or --curve-any-client, not both\n");
    return 1;
  }

  // Every thread started below inherits this mask; the main thread takes the signals with
  // sigtimedwait, so no handler runs inside libzmq.
  sigset_t handled;
  sigemptyset(&handled);
  for (const int sig : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&handled, sig);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  zmq::context_t ctx;
  std::unique_ptr<capture_writer> capture;
  std::unique_ptr<direction> events, commands;
  // The ZAP handler answers the handshakes of the directions' sockets: reset after them.
  std::optional<foxml::events::curve_keypair> curve;
  std::unique_ptr<foxml::events::curve_authorizer> authorizer;
  try {
    if (!curve_keys.empty()) {
      curve = foxml::events::read_curve_key_file(curve_keys);
      std::vector<std::string> authorized;
      if (!curve_authorized.empty()) authorized = foxml::events::read_curve_authorized(curve_authorized);
      // Before any CURVE socket binds: a context without a ZAP handler admits every client.
      authorizer = std::make_unique<foxml::events::curve_authorizer>(ctx, std::move(authorized), curve_any_client);
    }
    if (emitter_commands.empty()) emitter_commands = foxml::events::zmq_command_endpoint(emitters);
    if (sender_commands.empty()) sender_commands = foxml::events::zmq_command_endpoint(subscribers);
    if (!capture_path.empty()) capture = std::make_unique<capture_writer>(ctx, capture_path);
    events = std::make_unique<direction>(ctx, "events", emitters, subscribers, hwm, !lossy,
                                         capture ? &capture->proxy_side() : nullptr, curve ? &*curve : nullptr);
    events->set_roles("emitters", "subscribers");
    events->subscribe_to_everything();
    commands = std::make_unique<direction>(ctx, "commands", sender_commands, emitter_commands, hwm, false, nullptr,
                                           curve ? &*curve : nullptr);
    commands->set_roles("senders", "emitters");
    commands->subscribe_to_everything();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "events-proxy: %s\n", e.what());
    return 1;
  }
  if (capture) capture->start();
  events->start();
  commands->start();
  std::fprintf(stderr, "events-proxy: emitters %s (commands to them %s), subscribers %s (commands from %s)%s%s%s%s\n",
               emitters.c_str(), emitter_commands.c_str(), subscribers.c_str(), sender_commands.c_str(),
               capture ? ", capture " : "", capture_path.c_str(), curve ? ", CURVE server key " : "",
               curve ? curve->public_key.c_str() : "");
  std::fflush(stderr);

  using clock = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(stats_interval));
  auto next_stats = clock::now() + interval;
  for (;;) {
    // Wake at least once a second to notice a proxy that ended on its own.
    auto wait = std::chrono::seconds(1);
    auto until = stats_interval > 0 ? std::min<clock::duration>(next_stats - clock::now(), wait) : wait;
    if (until < clock::duration::zero()) until = clock::duration::zero();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until).count();
    timespec timeout{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    const int sig = sigtimedwait(&handled, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) break;
    if (sig == SIGUSR1) print_statistics(*events, *commands, capture.get(), authorizer.get());
    if (events->done() || commands->done()) break;
    if (stats_interval > 0 && clock::now() >= next_stats) {
      print_statistics(*events, *commands, capture.get(), authorizer.get());
      next_stats += interval;
      if (next_stats < clock::now()) next_stats = clock::now() + interval;
    }
  }

  print_statistics(*events, *commands, capture.get(), authorizer.get());
  events->terminate();
  commands->terminate();
  // A proxy blocked on a subscriber at its high-water mark reads no control message: after a
  // grace period, shutting the context down makes its blocking call return.
  const auto deadline = clock::now() + std::chrono::seconds(2);
  while ((!events->done() || !commands->done()) && clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!events->done() || !commands->done()) ctx.shutdown();
  events->join();
  commands->join();
  if (capture) {
    capture->stop();
    std::fprintf(stderr, "events-proxy: captured %llu events to %s\n",
                 static_cast<unsigned long long>(capture->lines()), capture_path.c_str());
  }
  events.reset();
  commands.reset();
  capture.reset();
  authorizer.reset();
  return 0;
}
