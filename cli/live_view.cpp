#include "live_view.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

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
    out += fmt::format("  {:<14}  {}/{}  seen {} ago", rank.stage.empty() ? "-" : rank.stage, rank.host, rank.pid,
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

}  // namespace

live_view::live_view(std::string origin, bool color, bool unicode)
    : origin_(std::move(origin)), color_(color), unicode_(unicode) {
  write_all("\x1b[?1049h\x1b[?25l");
}

live_view::~live_view() { write_all("\x1b[?25h\x1b[?1049l"); }

std::string live_view::frame(const fr::run_tracker& tracker, const fr::event_stream& stream, std::int64_t now_us,
                             int width) const {
  const auto& s = stream.stats();
  const char* bold = color_ ? "\x1b[1m" : "";
  const char* dim = color_ ? "\x1b[2m" : "";
  const char* reset = color_ ? "\x1b[0m" : "";
  std::string out = fmt::format("{}events-tail --live{}  {}  runs {}  events {}  malformed {}  gaps {}  duplicates {}\n",
                                bold, reset, origin_, tracker.runs().size(), s.events, s.malformed, s.gaps, s.duplicates);
  out += std::string(static_cast<std::size_t>(std::min(width, 200)), '-') + "\n";
  if (tracker.runs().empty()) out += "No training running (waiting for events)\n";
  const int bar_width = std::max(10, std::min(width, 120) - 30);
  for (const auto& run : tracker.runs()) {
    out += fmt::format("{}{}{}{}  [{}{}{}]", bold, run.run_id, run.name ? " (" + *run.name + ")" : "", reset,
                       color_ ? status_color(run.status) : "", fr::to_string(run.status), reset);
    if (!run.stages.empty()) {
      out += fmt::format("  stage: {} ({})", run.stage, format_duration(run.stages.back().duration_s(now_us)));
    }
    out += "\n";
    const double pct = std::clamp(run.progress_pct, 0.0, 100.0);
    const int filled = static_cast<int>(pct / 100.0 * bar_width);
    std::string bar;
    for (int i = 0; i < bar_width; ++i) bar += i < filled ? (unicode_ ? "\u2588" : "#") : (unicode_ ? "\u2591" : ".");
    out += fmt::format("  [{}] {:5.1f}%", bar, run.progress_pct);
    if (run.step) out += fmt::format("  step {}/{}", *run.step, run.total_steps ? std::to_string(*run.total_steps) : "?");
    if (run.epoch) out += fmt::format("  epoch {}/{}", *run.epoch, run.total_epochs ? std::to_string(*run.total_epochs) : "?");
    if (run.eta_s && run.status == fr::run_status::running) out += "  ETA " + format_duration(*run.eta_s);
    out += "\n";
    if (run.current_target || run.targets_total > 0) {
      out += fmt::format("  target: {} ({}/{})\n", run.current_target.value_or("-"), run.targets_complete, run.targets_total);
    }
    if (!run.metrics.empty()) {
      std::string line = "  metrics:";
      for (const auto& [name, series] : run.metrics) line += fmt::format(" {}={:.4g}", name, series.latest);
      out += line.substr(0, static_cast<std::size_t>(width)) + "\n";
    }
    if (!run.completed_targets.empty()) {
      std::string line = "  done:";
      for (const auto& t : run.completed_targets) {
        line += fmt::format(" {}{}", t.status == "success" ? "+" : t.status == "failed" ? "x" : "-", t.name);
        if (t.best_auc) line += fmt::format("(auc {:.3f})", *t.best_auc);
      }
      out += line.substr(0, static_cast<std::size_t>(width)) + "\n";
    }
    if (!run.errors.empty()) {
      const auto& e = run.errors.back();
      out += fmt::format("  {}errors {}: {}: {}{}\n", color_ ? "\x1b[31m" : "", run.errors.size(), e.type,
                         e.message.substr(0, 80), reset);
    }
    out += rank_lines(run, now_us, color_);
    out += fmt::format("  {}last event {} ago, {} events{}\n\n", dim,
                       format_duration(static_cast<double>(now_us - run.last_seen_us) / 1e6), run.events, reset);
  }
  return out;
}

void live_view::render(const fr::run_tracker& tracker, const fr::event_stream& stream, std::int64_t now_us) {
  const std::string text = frame(tracker, stream, now_us, terminal_width());
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
