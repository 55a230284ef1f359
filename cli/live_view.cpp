#include "live_view.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "foxml/events/reader/run_json.hpp"

#include "format.hpp"

namespace events_tail {

namespace fr = foxml::events::reader;

namespace {

int terminal_width() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 100;
}

const char* status_color(fr::run_status s) {
  switch (s) {
    case fr::run_status::running: return "\x1b[1;34m";
    case fr::run_status::completed: return "\x1b[1;32m";
    case fr::run_status::failed: return "\x1b[1;31m";
    case fr::run_status::cancelled: return "\x1b[1;33m";
    case fr::run_status::stale: return "\x1b[1;35m";
    case fr::run_status::killed: return "\x1b[1;31m";
  }
  return "";
}

// A line per rank for a run of several: where each is, the straggler marked, stale and killed
// ones in their colour. A run of one rank shows its liveness in the run's own status.
std::string rank_lines(const fr::run_state& run, std::int64_t now_us, bool color) {
  if (run.world_size <= 1 && run.ranks.size() <= 1) return {};
  const char* reset = color ? "\x1b[0m" : "";
  std::string out = fmt::format("  ranks {}/{}", run.ranks.size(), run.world_size);
  if (!run.stale_ranks.empty()) out += fmt::format("  stale: {}", fmt::join(run.stale_ranks, ","));
  if (run.slowest_rank) out += fmt::format("  slowest: rank {}", *run.slowest_rank);
  out += "\n";
  for (const auto& [number, rank] : run.ranks) {
    out += fmt::format("    rank {:<3} {}{:<9}{} {:>5.1f}%", number, color ? status_color(rank.status) : "",
                       fr::to_string(rank.status), reset, rank.progress_pct);
    out += rank.step ? fmt::format("  step {:<7}", *rank.step) : std::string(14, ' ');
    out += fmt::format("  {:<14}  {}/{}  seen {} ago", rank.stage.empty() ? "-" : printable(rank.stage), printable(rank.host), rank.pid,
                       format_duration(static_cast<double>(now_us - rank.last_seen_us) / 1e6));
    if (run.slowest_rank == number) out += "  <- slowest";
    out += "\n";
  }
  return out;
}

void write_all(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int terminal_height() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 5) return ws.ws_row;
  return 40;
}

// "12:03:04" (UTC) of a time in unix microseconds.
std::string time_of_day(std::int64_t unix_us) {
  const auto s = unix_us / 1'000'000;
  return fmt::format("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60);
}

const char* level_color(const std::string& level) {
  if (level == "error" || level == "critical" || level == "fatal") return "\x1b[31m";
  if (level == "warning" || level == "warn") return "\x1b[33m";
  return "\x1b[2m";
}

// The stages in order with their durations, the current one marked; the oldest give way to "..."
// when the line is wider than `width`.
std::string stage_line(const fr::run_state& run, std::int64_t now_us, int width) {
  std::vector<std::string> pieces;
  for (std::size_t i = 0; i < run.stages.size(); ++i) {
    const auto& span = run.stages[i];
    const bool current = !span.end_us && run.running();
    pieces.push_back(fmt::format("{} {}{}", printable(span.name), format_duration(span.duration_s(now_us)), current ? "*" : ""));
  }
  std::size_t first = 0;
  const auto joined = [&] {
    return fmt::format("  stages: {}{}", first > 0 ? fmt::format("({} more) ", first) : "",
                       fmt::join(pieces.begin() + static_cast<std::ptrdiff_t>(first), pieces.end(), " > "));
  };
  while (first + 1 < pieces.size() && display_width(joined()) > static_cast<std::size_t>(width)) ++first;
  return joined() + "\n";
}

// A line per metric series, the training and validation series of a name adjacent (the tracker's
// one grouping rule): name, a sparkline of its history thinned to the line, latest value.
std::string sparkline_lines(const fr::run_state& run, int width, bool unicode) {
  std::string out;
  constexpr int name_width = 18;
  const int spark_width = std::clamp(width - name_width - 16, 8, 60);
  const auto line = [&](const std::string& name) {
    const auto& series = run.metrics.at(name);
    std::vector<double> values;
    for (const auto i : fr::thinned_indices(series.history.size(), static_cast<std::size_t>(spark_width))) {
      values.push_back(series.history[i].second);
    }
    out += fmt::format("  {:<{}} {:<{}} {:.4g}\n", fit_width(printable(name), name_width), name_width,
                       sparkline(values, unicode), spark_width, series.latest);
  };
  for (const auto& [base, group] : fr::metric_groups(run)) {
    if (group.train) line(*group.train);
    if (group.val) line(*group.val);
  }
  return out;
}

std::string resources_line(const fr::resource_snapshot& r) {
  std::string out = "  resources:";
  if (r.cpu_pct) out += fmt::format(" cpu {:.0f}%", *r.cpu_pct);
  if (r.rss_bytes) out += " rss " + format_bytes(static_cast<double>(*r.rss_bytes));
  if (r.mem_used_bytes && r.mem_total_bytes && *r.mem_total_bytes > 0) {
    out += fmt::format(" mem {}/{}", format_bytes(static_cast<double>(*r.mem_used_bytes)),
                       format_bytes(static_cast<double>(*r.mem_total_bytes)));
  }
  for (const auto& g : r.gpus) {
    out += fmt::format("  gpu{}", g.index);
    if (g.util_pct) out += fmt::format(" {:.0f}%", *g.util_pct);
    out += fmt::format(" {}/{}", format_bytes(static_cast<double>(g.mem_used_bytes)),
                       format_bytes(static_cast<double>(g.mem_total_bytes)));
    if (g.temperature_c) out += fmt::format(" {:.0f}C", *g.temperature_c);
  }
  return out + "\n";
}

}  // namespace

live_view::live_view(std::string origin, bool color, bool unicode, bool keys)
    : origin_(std::move(origin)), color_(color), unicode_(unicode), keys_(keys) {
  if (keys_ && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
    termios raw = saved_;
    // Keys as typed, unechoed; ISIG stays, so Ctrl-C still stops the program through its handler.
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    keys_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  } else {
    keys_ = false;
  }
  write_all("\x1b[?1049h\x1b[?25l");
}

live_view::~live_view() {
  if (keys_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  write_all("\x1b[?25h\x1b[?1049l");
}

std::size_t live_view::selected_index(const fr::run_tracker& tracker) const {
  const auto& runs = tracker.runs();
  if (runs.empty()) return 0;
  if (!follow_) {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      if (runs[i].run_id == selected_) return i;
    }
  }
  return runs.size() - 1;
}

void live_view::apply(key k, const fr::run_tracker& tracker) {
  const auto& runs = tracker.runs();
  if (k == key::follow || runs.empty()) {
    follow_ = true;
    return;
  }
  const auto n = static_cast<std::ptrdiff_t>(runs.size());
  auto at = static_cast<std::ptrdiff_t>(selected_index(tracker));
  const auto page = static_cast<std::ptrdiff_t>(std::max(1, list_rows_));
  switch (k) {
    case key::up: --at; break;
    case key::down: ++at; break;
    case key::page_up: at -= page; break;
    case key::page_down: at += page; break;
    case key::home: at = 0; break;
    default: break;
  }
  at = std::clamp<std::ptrdiff_t>(at, 0, n - 1);
  follow_ = false;
  selected_ = runs[static_cast<std::size_t>(at)].run_id;
}

bool live_view::read_keys(const fr::run_tracker& tracker, bool& quit) {
  if (!keys_) return false;
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0 || (pfd.revents & POLLIN) == 0) return false;
  char buffer[64];
  const ssize_t got = ::read(STDIN_FILENO, buffer, sizeof(buffer));
  if (got <= 0) return false;
  const std::string_view input(buffer, static_cast<std::size_t>(got));
  // Escape sequences as xterm, tmux and the Linux console send them; anything else is ignored.
  static constexpr std::pair<std::string_view, key> sequences[] = {
      {"\x1b[A", key::up},        {"\x1bOA", key::up},        {"\x1b[B", key::down},   {"\x1bOB", key::down},
      {"\x1b[5~", key::page_up},  {"\x1b[6~", key::page_down}, {"\x1b[H", key::home},  {"\x1b[1~", key::home},
      {"\x1bOH", key::home},      {"\x1b[F", key::follow},    {"\x1b[4~", key::follow}, {"\x1bOF", key::follow},
      {"k", key::up},             {"j", key::down},           {"g", key::home},       {"G", key::follow},
      {"f", key::follow},         {"q", key::quit}};
  bool changed = false;
  for (std::size_t i = 0; i < input.size();) {
    std::size_t matched = 0;
    for (const auto& [text, k] : sequences) {
      if (input.substr(i, text.size()) != text) continue;
      matched = text.size();
      if (k == key::quit) {
        quit = true;
      } else {
        apply(k, tracker);
      }
      changed = true;
      break;
    }
    i += matched > 0 ? matched : 1;
  }
  return changed;
}

std::string live_view::run_list(const fr::run_tracker& tracker, std::int64_t now_us, int width, int rows) {
  const char* reset = color_ ? "\x1b[0m" : "";
  const auto& runs = tracker.runs();
  const std::size_t selected = selected_index(tracker);
  const auto shown = std::min<std::size_t>(runs.size(), static_cast<std::size_t>(std::max(1, rows)));
  list_rows_ = static_cast<int>(shown);
  // Scrolled just enough to keep the selected run in view.
  if (selected < list_top_) list_top_ = selected;
  if (selected >= list_top_ + shown) list_top_ = selected + 1 - shown;
  list_top_ = std::min(list_top_, runs.size() - shown);

  std::map<fr::run_status, std::size_t> counts;
  for (const auto& run : runs) ++counts[run.status];
  std::vector<std::string> parts;
  for (const auto& [status, n] : counts) parts.push_back(fmt::format("{} {}", n, fr::to_string(status)));
  std::string out = fmt::format("runs {} ({})  showing {}-{}{}\n", runs.size(), fmt::join(parts, ", "), list_top_ + 1,
                                list_top_ + shown, follow_ ? ", following the newest" : "");
  for (std::size_t i = list_top_; i < list_top_ + shown; ++i) {
    const auto& run = runs[i];
    out += fmt::format("{} {:<24} {}{:<9}{} {:5.1f}%  {:<16} {:>8}\n", i == selected ? ">" : " ",
                       fit_width(printable(run.run_id), 24), color_ ? status_color(run.status) : "",
                       fr::to_string(run.status), reset, run.progress_pct,
                       fit_width(run.stage.empty() ? "-" : printable(run.stage), 16), format_duration(run.elapsed_s(now_us)));
  }
  if (keys_) {
    out += fmt::format("{}  keys: up/down, PgUp/PgDn, Home select  f/End follow newest  q quit{}\n",
                       color_ ? "\x1b[2m" : "", reset);
  }
  out += std::string(static_cast<std::size_t>(std::min(width, 200)), '-') + "\n";
  return out;
}

std::string live_view::run_detail(const fr::run_state& run, std::int64_t now_us, int width) const {
  const char* bold = color_ ? "\x1b[1m" : "";
  const char* dim = color_ ? "\x1b[2m" : "";
  const char* reset = color_ ? "\x1b[0m" : "";
  std::string out = fmt::format("{}{}{}{}  [{}{}{}]", bold, printable(run.run_id), run.name ? " (" + printable(*run.name) + ")" : "",
                                reset, color_ ? status_color(run.status) : "", fr::to_string(run.status), reset);
  if (!run.stages.empty()) {
    out += fmt::format("  stage: {} ({})", printable(run.stage), format_duration(run.stages.back().duration_s(now_us)));
  }
  out += "\n";
  const std::string host = run.host();
  if (!host.empty() || !run.tags.empty()) {
    out += fmt::format("  host {}", host.empty() ? "-" : printable(host));
    if (!run.tags.empty()) out += fmt::format("  tags {}", printable(fmt::format("{}", fmt::join(run.tags, ","))));
    out += "\n";
  }
  const int bar_width = std::clamp(width - 52, 10, 60);
  const double pct = std::clamp(run.progress_pct, 0.0, 100.0);
  const int filled = static_cast<int>(pct / 100.0 * bar_width);
  std::string bar;
  for (int i = 0; i < bar_width; ++i) bar += i < filled ? (unicode_ ? "\u2588" : "#") : (unicode_ ? "\u2591" : ".");
  out += fmt::format("  [{}] {:5.1f}%", bar, run.progress_pct);
  if (run.step) out += fmt::format("  step {}/{}", *run.step, run.total_steps ? std::to_string(*run.total_steps) : "?");
  if (run.epoch) out += fmt::format("  epoch {}/{}", *run.epoch, run.total_epochs ? std::to_string(*run.total_epochs) : "?");
  if (run.eta_s && run.status == fr::run_status::running) out += "  ETA " + format_duration(*run.eta_s);
  out += "\n";
  out += fmt::format("  elapsed {}  {}\n", format_duration(run.elapsed_s(now_us)),
                     run.steps_per_s ? fmt::format("{:.3g} steps/s", *run.steps_per_s) : std::string("steps/s -"));
  if (run.current_target || run.targets_total > 0) {
    out += fmt::format("  target: {} ({}/{})\n", printable(run.current_target.value_or("-")), run.targets_complete,
                       run.targets_total);
  }
  if (!run.stages.empty()) out += stage_line(run, now_us, width);
  if (!run.metrics.empty()) {
    std::string line = "  metrics:";
    for (const auto& [name, series] : run.metrics) line += fmt::format(" {}={:.4g}", printable(name), series.latest);
    out += line + "\n";
    out += sparkline_lines(run, width, unicode_);
  }
  if (!run.completed_targets.empty()) {
    std::string line = "  done:";
    for (const auto& t : run.completed_targets) {
      line += fmt::format(" {}{}", t.status == "success" ? "+" : t.status == "failed" ? "x" : "-", printable(t.name));
      if (t.best_auc) line += fmt::format("(auc {:.3f})", *t.best_auc);
    }
    out += line + "\n";
  }
  if (!run.errors.empty()) {
    const auto& e = run.errors.back();
    out += fmt::format("  {}errors {}: {}: {}{}\n", color_ ? "\x1b[31m" : "", run.errors.size(), printable(e.type),
                       printable(e.message), reset);
  }
  if (run.resources) out += resources_line(*run.resources);
  out += rank_lines(run, now_us, color_);
  constexpr std::size_t log_lines = 4;
  for (auto it = run.logs.size() > log_lines ? run.logs.end() - log_lines : run.logs.begin(); it != run.logs.end(); ++it) {
    out += fmt::format("  {}{} {:<7}{} {}\n", color_ ? level_color(it->level) : "", time_of_day(it->unix_us),
                       fit_width(printable(it->level), 7), reset, printable(it->message));
  }
  out += fmt::format("  {}last event {} ago, {} events{}\n", dim,
                     format_duration(static_cast<double>(now_us - run.last_seen_us) / 1e6), run.events, reset);
  return out;
}

std::string live_view::frame(const fr::run_tracker& tracker, const fr::event_stream& stream, std::int64_t now_us,
                             int width, int height) {
  const auto& s = stream.stats();
  const char* bold = color_ ? "\x1b[1m" : "";
  const char* reset = color_ ? "\x1b[0m" : "";
  // The counters first: a long source name is what an 80-column screen cuts.
  std::string out = fmt::format("{}events-tail --live{}  runs {}  events {}  malformed {}  gaps {}  duplicates {}  {}\n",
                                bold, reset, tracker.runs().size(), s.events, s.malformed, s.gaps, s.duplicates, origin_);
  out += std::string(static_cast<std::size_t>(std::min(width, 200)), '-') + "\n";
  const auto& runs = tracker.runs();
  if (runs.empty()) out += "No training running (waiting for events)\n";
  // Several runs: a list that scrolls (a third of the screen at most), then the selected run.
  if (runs.size() > 1) out += run_list(tracker, now_us, width, std::clamp((height - 4) / 3, 3, 12));
  if (!runs.empty()) out += run_detail(runs[selected_index(tracker)], now_us, width);

  // Every line fits the width (cut, never wrapped) and the frame the height.
  std::string fitted;
  int lines = 0;
  for (std::size_t start = 0; start < out.size() && lines < height;) {
    auto nl = out.find('\n', start);
    if (nl == std::string::npos) nl = out.size();
    fitted += fit_width(std::string_view(out).substr(start, nl - start), static_cast<std::size_t>(width));
    fitted += '\n';
    ++lines;
    start = nl + 1;
  }
  return fitted;
}

void live_view::render(const fr::run_tracker& tracker, const fr::event_stream& stream, std::int64_t now_us) {
  // One line short of the screen: the newline after the last line must not scroll it.
  const std::string text = frame(tracker, stream, now_us, terminal_width(), terminal_height() - 1);
  // Home, then each line cleared to its end, then the rest of the screen: no flicker, no scroll.
  std::string screen = "\x1b[H";
  std::size_t start = 0;
  while (start < text.size()) {
    const auto nl = text.find('\n', start);
    screen.append(text, start, nl - start);
    screen += "\x1b[K\r\n";
    start = nl + 1;
  }
  screen += "\x1b[J";
  write_all(screen);
}

}  // namespace events_tail
