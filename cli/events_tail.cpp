// events-tail: prints, follows and summarises foxml training events from a file, a Unix socket
// or a ZeroMQ publisher. A thin front end over the reader library.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>

#include "foxml/events/detail/text.hpp"
#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/file_source.hpp"
#include "foxml/events/reader/live_reader.hpp"
#include "format.hpp"
#include "live_view.hpp"
#ifdef FOXML_EVENTS_TAIL_ZMQ
#include "foxml/events/reader/zmq_source.hpp"
#endif

namespace fe = foxml::events;
namespace fr = foxml::events::reader;
using namespace std::chrono_literals;
using events_tail::format_event;
using events_tail::format_runs;
using events_tail::format_stats;
using events_tail::live_view;

namespace {

constexpr int exit_ok = 0, exit_source_error = 1, exit_usage = 2;

std::atomic<bool> stop_requested{false};
fr::live_reader* active_reader = nullptr;  // set before the handlers are installed, never changed after

extern "C" void on_signal(int) {
  stop_requested = true;
  if (active_reader != nullptr) active_reader->stop();  // atomics and an eventfd write: async-signal-safe
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Writes to stdout; false once the reader of our output has gone (`| head`), which ends the run.
bool emit(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return !std::ferror(stdout);
}

const char* const exit_codes_help =
    "Exit codes:\n"
    "  0  done: end of FILE without --follow, or stopped by SIGINT/SIGTERM, or stdout closed\n"
    "  1  the source failed: FILE missing (without --follow), socket in use, bad ZeroMQ endpoint\n"
    "  2  bad arguments\n";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prints, follows and summarises foxml training events (JSON lines).\n"
               "Sources: a FILE (followed like tail -F with -f), a Unix socket to listen on (--socket),\n"
               "or a ZeroMQ publisher to subscribe to (--zmq). Duplicates (same run_id, host, pid, seq)\n"
               "are dropped; malformed lines are counted and skipped.",
               "events-tail"};
  app.footer(exit_codes_help);
  std::string file, socket_path, zmq_endpoint, color = "auto";
  bool follow = false, json_out = false, live = false, stats = false;
  std::optional<std::size_t> last_n;
  std::vector<std::string> types, runs;
  std::size_t max_line = fr::defaults::max_line_bytes, max_depth = fr::defaults::max_depth;
  auto* file_opt = app.add_option("FILE", file, "JSON-lines event file to read");
  auto* socket_opt = app.add_option("--socket", socket_path, "listen on this Unix socket for emitters (created 0600)");
  auto* zmq_opt = app.add_option("--zmq", zmq_endpoint, "subscribe to a ZeroMQ PUB endpoint (ipc://..., tcp://...)");
  file_opt->excludes(socket_opt, zmq_opt);
  socket_opt->excludes(zmq_opt);
  app.add_flag("-f,--follow", follow, "keep reading as FILE grows, across rotation and truncation (sockets always follow)");
  app.add_option("-n,--lines", last_n, "print only the last N matching events of FILE's history, then follow with -f");
  app.add_option("--type", types, "only events of these types (repeatable): run_start progress stage_change "
                                  "target_complete metrics log resources error heartbeat dropped run_complete")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_option("--run", runs, "only events of these run ids (repeatable)")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_flag("--json", json_out, "print the raw JSON lines (for jq)");
  app.add_flag("--live", live, "full-screen view of the runs: progress bar, ETA, elapsed time and steps/s, stages with "
                               "durations, metric sparklines, targets, errors, resources, ranks, recent logs; with several "
                               "runs a list (up/down, PgUp/PgDn, Home select a run; f/End follow the newest; q quits) "
                               "(implies -f)");
  app.add_flag("--stats", stats, "print rates, gaps, duplicates and malformed lines instead of events (at the end; "
                                 "every 2 s while following)");
  app.add_option("--color", color, "colour the readable output: auto (on a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  app.add_option("--max-line-bytes", max_line, "longer lines are counted as malformed");
  app.add_option("--max-depth", max_depth, "deeper-nested lines are counted as malformed");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_usage;
  }
  if (file.empty() && socket_path.empty() && zmq_endpoint.empty()) {
    fmt::print(stderr, "events-tail: give a FILE, --socket PATH or --zmq ENDPOINT (see --help)\n");
    return exit_usage;
  }
  fr::event_filter filter;
  for (const auto& name : types) {
    const auto type = fe::parse_event_type(name);
    if (!type) {
      fmt::print(stderr, "events-tail: unknown event type '{}' (see --help)\n", name);
      return exit_usage;
    }
    filter.types.insert(*type);
  }
  filter.runs.insert(runs.begin(), runs.end());
  if (live) follow = true;

  fr::live_reader_options options;
  options.source.follow = follow;
  options.source.max_line_bytes = max_line;
  options.source.max_poll_bytes = 0;  // the first poll reads FILE's whole history: -n keeps its tail
  options.stream.limits.max_depth = max_depth;
  options.filter = filter;
  options.ring_size = 1;  // printed as read: no late joiners to serve
  std::unique_ptr<fr::live_reader> reader;
#ifdef FOXML_EVENTS_TAIL_ZMQ
  fr::enable_zmq_source_uris();
#endif
  try {
    // FILE and --socket take paths as given (relative ones too); --zmq a ZeroMQ endpoint.
    fr::source_uri uri;
    if (!file.empty()) {
      uri.kind = fr::source_kind::file;
      uri.path = uri.text = file;
    } else if (!socket_path.empty()) {
      uri.kind = fr::source_kind::unix_socket;
      uri.path = uri.text = socket_path;
    } else {
      uri = fr::parse_source_uri(zmq_endpoint);
    }
    if (uri.kind != fr::source_kind::file) follow = true;
    reader = std::make_unique<fr::live_reader>(uri, options);
  } catch (const std::exception& e) {
    fmt::print(stderr, "events-tail: {}\n", e.what());
    return exit_source_error;
  }

  active_reader = reader.get();
  std::signal(SIGPIPE, SIG_IGN);
  {
    // No SA_RESTART (std::signal sets it): a blocking call returns EINTR, so the loop sees the
    // stop request even when the signal lands outside the source's wait.
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
  }
  const auto* followed_file = dynamic_cast<const fr::file_source*>(&reader->input());
  std::uint64_t not_regular_told = 0;

  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  // NO_COLOR counts when set and not empty (no-color.org).
  const bool use_color = color == "always" || (color == "auto" && tty && fe::detail::env_value("NO_COLOR").empty());
  std::string lang = fe::detail::env_value("LC_ALL");
  if (lang.empty()) lang = fe::detail::env_value("LC_CTYPE");
  if (lang.empty()) lang = fe::detail::env_value("LANG");
  const bool unicode = lang.find("UTF-8") != std::string::npos || lang.find("utf8") != std::string::npos;

  std::unique_ptr<live_view> view;
  // Keys only from a terminal we are in the foreground of: a background job touching its modes or
  // reading it would be stopped (SIGTTOU, SIGTTIN).
  const bool keys = ::isatty(STDIN_FILENO) != 0 && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp();
  if (live) view = std::make_unique<live_view>(reader->describe(), use_color, unicode, keys);

  const bool print_events = !live && !stats;
  bool history = last_n.has_value();  // still in FILE's history: keep only the last N
  std::deque<std::string> held;
  bool output_open = true;
  bool dirty = true;
  const auto print = [&](const fr::stream_event& e) {
    std::string text = json_out ? e.line + "\n" : format_event(e.value, use_color) + "\n";
    if (history) {
      held.push_back(std::move(text));
      if (held.size() > *last_n) held.pop_front();
    } else if (output_open) {
      output_open = emit(text);
    }
  };
  const auto on_item = [&](const fr::live_item& item) {
    dirty = true;
    if (print_events) print(*item.event);
  };
  const auto stats_text = [&](double seconds) {
    if (follow) reader->check_stale(now_us());  // a followed stream is live: its runs can go stale or die
    return reader->inspect([&](const fr::event_stream& stream, const fr::run_tracker& tracker) {
      return format_stats(stream, seconds) + format_runs(tracker);
    });
  };

  const auto started = std::chrono::steady_clock::now();
  auto last_render = started - 1h, last_stats = started;
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  for (;;) {
    const bool more = reader->poll(live ? 250ms : 1000ms, on_item);
    if (followed_file != nullptr && followed_file->stats().not_regular > not_regular_told) {
      not_regular_told = followed_file->stats().not_regular;
      fmt::print(stderr, "events-tail: {} is not a regular file (a FIFO, device or directory); not read, waiting "
                         "for a regular file there\n", file);
    }
    if (history) {
      history = false;  // the first poll read what was there: print its tail, then go live
      for (const auto& text : held) {
        if (output_open) output_open = emit(text);
      }
      held.clear();
    }
    std::fflush(stdout);
    bool quit = false;
    if (view) {
      reader->inspect([&](const fr::event_stream&, const fr::run_tracker& tracker) {
        if (view->read_keys(tracker, quit)) dirty = true;
      });
    }
    if (quit) break;
    const auto now = std::chrono::steady_clock::now();
    if (view && (dirty || now - last_render >= 1s) && now - last_render >= 100ms) {
      reader->check_stale(now_us());
      reader->inspect([&](const fr::event_stream& stream, const fr::run_tracker& tracker) {
        view->render(tracker, stream, now_us());
      });
      last_render = now;
      dirty = false;
    }
    if (stats && follow && now - last_stats >= 2s) {
      output_open = emit(stats_text(elapsed()) + "\n") && output_open;
      std::fflush(stdout);
      last_stats = now;
    }
    if (!more || stop_requested || !output_open) break;
  }
  view.reset();
  if (stats) {
    reader->flush_gaps();
    emit(stats_text(elapsed()));
  }
  std::fflush(stdout);
  return exit_ok;
}
