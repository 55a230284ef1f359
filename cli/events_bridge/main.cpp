// events-bridge: serves foxml training events over HTTP and WebSocket (seed 004's protocol and
// more) and the web dashboard, from any reader sources. A thin front end over the reader library.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include "defaults.hpp"
#include "foxml/events/defaults.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "foxml/events/reader/merged_source.hpp"
#include "foxml/events/sink_uri.hpp"
#include "server.hpp"
#ifdef FOXML_EVENTS_BRIDGE_ZMQ
#include "foxml/events/reader/zmq_source.hpp"
#endif

namespace fe = foxml::events;
namespace fr = foxml::events::reader;
namespace asio = boost::asio;

namespace {

constexpr int exit_ok = 0, exit_failure = 1, exit_usage = 2;

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the token file " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.empty()) throw std::runtime_error("the token file " + path + " is empty");
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serves foxml training events over HTTP and WebSocket, and the web dashboard at /.\n"
               "Sources: files (followed from their start), unix:///path sockets to listen on, ZeroMQ\n"
               "endpoints (zmq+tcp://...), several at once. With none: the default event file and the\n"
               "default socket (what a trainer with default settings writes to).",
               "events-bridge"};
  std::vector<std::string> sources;
  events_bridge::server_options options;
  std::string token_file;
  std::size_t ring_size = events_bridge::defaults::ring_size;
  app.add_option("SOURCE", sources, "reader URIs or file paths (default: the default event file and socket)");
  app.add_option("--host", options.host, "address to bind; anything but loopback needs --token")
      ->capture_default_str();
  app.add_option("--port", options.port, "TCP port (0: a free one)")->capture_default_str();
  auto* token_opt = app.add_option("--token", options.token, "require this token on every request");
  app.add_option("--token-file", token_file, "read the token from the first line of this file")->excludes(token_opt);
  app.add_option("--client-queue", options.client_queue,
                 "messages a WebSocket client may fall behind before it is disconnected")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--ws-history", options.ws_history, "events a new WebSocket client gets first (without ?since=)")
      ->capture_default_str();
  app.add_option("--max-points", options.max_points, "points per series in /api/runs/{id}")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000000));
  app.add_option("--ring-size", ring_size, "events kept for late joiners and ?since= resumes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double command_timeout_s = std::chrono::duration<double>(events_bridge::defaults::command_timeout).count();
  app.add_option("--command-timeout", command_timeout_s,
                 "seconds POST .../commands waits for the trainer's acknowledgement (then 504)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 600.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_usage;
  }
  options.command_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(command_timeout_s * 1000));
  try {
    if (!token_file.empty()) options.token = read_token_file(token_file);
  } catch (const std::exception& e) {
    fmt::print(stderr, "events-bridge: {}\n", e.what());
    return exit_usage;
  }
  if (!is_loopback(options.host) && options.token.empty()) {
    fmt::print(stderr, "events-bridge: binding {} (not loopback) needs --token or --token-file: anyone who can "
                       "reach it could read the runs and cancel them\n", options.host);
    return exit_usage;
  }

#ifdef FOXML_EVENTS_BRIDGE_ZMQ
  fr::enable_zmq_source_uris();
#endif
  fr::live_reader_options reader_options;
  reader_options.source.follow = true;  // a file is followed from its start: finished runs show
  reader_options.ring_size = ring_size;
  std::unique_ptr<fr::live_reader> reader;
  try {
    std::vector<fr::source_uri> uris;
    if (sources.empty()) {
      uris.push_back(fr::parse_source_uri(fe::default_event_file()));
      fr::source_uri socket;
      socket.kind = fr::source_kind::unix_socket;
      socket.path = fe::default_event_socket();
      socket.text = "unix://" + socket.path;
      uris.push_back(socket);
    } else {
      for (const auto& text : sources) uris.push_back(fr::parse_source_uri(text));
    }
    std::vector<std::unique_ptr<fr::source>> opened;
    for (const auto& uri : uris) {
      try {
        opened.push_back(fr::make_source(uri, reader_options.source));
      } catch (const std::system_error& e) {
        // The default socket may be held by another reader (events-tail --socket): the file still
        // has everything a default trainer writes.
        if (!sources.empty() || uri.kind != fr::source_kind::unix_socket) throw;
        fmt::print(stderr, "events-bridge: not listening on {} ({}); reading the event file only\n", uri.path,
                   e.what());
      }
    }
    for (const auto& s : opened) options.sources.push_back(s->describe());
    std::unique_ptr<fr::source> input = opened.size() == 1 ? std::move(opened.front())
                                                           : std::make_unique<fr::merged_source>(std::move(opened));
    reader = std::make_unique<fr::live_reader>(std::move(input), true, reader_options);
  } catch (const std::exception& e) {
    fmt::print(stderr, "events-bridge: {}\n", e.what());
    return exit_failure;
  }

  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io(1);
  std::unique_ptr<events_bridge::server> server;
  try {
    server = std::make_unique<events_bridge::server>(io, *reader, options);
  } catch (const std::exception& e) {
    fmt::print(stderr, "events-bridge: cannot serve on {}:{}: {}\n", options.host, options.port, e.what());
    return exit_failure;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server->stop();
    // Closing frames get a moment to go out; then the loop ends whatever is left.
    asio::post(io, [&io] { io.stop(); });
  });
  server->start();
  reader->start();
  const bool v6 = options.host.find(':') != std::string::npos;
  std::printf("events-bridge: serving http://%s%s%s:%u/\n", v6 ? "[" : "", options.host.c_str(), v6 ? "]" : "",
              static_cast<unsigned>(server->port()));
  std::fflush(stdout);
  for (const auto& s : options.sources) fmt::print(stderr, "events-bridge: reading {}\n", s);
  io.run();
  // Commands still waiting for an acknowledgement hold the server: they end within their timeout.
  const auto give_up = std::chrono::steady_clock::now() + options.command_timeout + std::chrono::seconds(1);
  while (server->pending_commands() > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  reader->close();
  server.reset();
  return exit_ok;
}
