#include "format.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <locale.h>
#include <wchar.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string_view>
#include <vector>

#include "foxml/events/schema_keys.hpp"

namespace events_tail {

namespace fe = foxml::events;

namespace {

const char* color_of(fe::event_type type) {
  switch (type) {
    case fe::event_type::error: return "\x1b[1;31m";
    case fe::event_type::dropped: return "\x1b[33m";
    case fe::event_type::run_start:
    case fe::event_type::run_complete: return "\x1b[1;32m";
    case fe::event_type::stage_change: return "\x1b[1;36m";
    case fe::event_type::target_complete: return "\x1b[35m";
    case fe::event_type::progress: return "\x1b[34m";
    default: return "\x1b[2m";
  }
}

std::string number(double v) { return std::isnan(v) ? "NaN" : fmt::format("{:.6g}", v); }

// "key=value", the key named by the schema.
template <class T>
std::string labelled(std::string_view key, const T& value) {
  return fmt::format("{}={}", key, value);
}

std::string details(const fe::event& e) {
  namespace names = fe::schema::names;
  std::string out;
  auto add = [&out](const std::string& piece) {
    if (!out.empty()) out += ' ';
    out += piece;
  };
  switch (e.type) {
    case fe::event_type::run_start:
      if (e.name) add(*e.name);
      if (e.total_steps) add(labelled(names::total_steps, *e.total_steps));
      if (e.total_epochs) add(labelled(names::total_epochs, *e.total_epochs));
      break;
    case fe::event_type::progress:
      add(fmt::format("{} {:.1f}%", e.stage.value_or("?"), e.progress_pct.value_or(0)));
      if (e.current_target) add(labelled(names::target, *e.current_target));
      if (e.targets_total && *e.targets_total > 0) add(fmt::format("({}/{})", e.targets_complete.value_or(0), *e.targets_total));
      if (e.step) {
        add(fmt::format("{} {}/{}", names::step, *e.step, e.total_steps ? std::to_string(*e.total_steps) : "?"));
      }
      if (e.epoch) {
        add(fmt::format("{} {}/{}", names::epoch, *e.epoch, e.total_epochs ? std::to_string(*e.total_epochs) : "?"));
      }
      break;
    case fe::event_type::stage_change:
      add(fmt::format("{} -> {}", e.previous_stage.value_or("(start)"), e.new_stage.value_or("?")));
      break;
    case fe::event_type::target_complete:
      add(fmt::format("{} {} models={}", e.target.value_or("?"), e.status.value_or("?"), e.models_trained.value_or(0)));
      if (e.best_auc) add(labelled(names::best_auc, number(*e.best_auc)));
      break;
    case fe::event_type::metrics:
      if (e.step) add(labelled(names::step, *e.step));
      if (e.epoch) add(labelled(names::epoch, *e.epoch));
      if (e.metrics) {
        for (const auto& [name, value] : *e.metrics) add(name + "=" + number(value));
      }
      break;
    case fe::event_type::log: add(fmt::format("[{}] {}", e.level.value_or("?"), e.message.value_or(""))); break;
    case fe::event_type::resources:
      add(fmt::format("cpu={:.0f}% rss={:.1f}MiB", e.cpu_pct.value_or(0),
                      static_cast<double>(e.rss_bytes.value_or(0)) / (1 << 20)));
      if (e.gpus) {
        for (const auto& g : *e.gpus) {
          add(g.util_pct ? fmt::format("gpu{}={:.0f}%", g.index, *g.util_pct) : fmt::format("gpu{}", g.index));
        }
      }
      break;
    case fe::event_type::error:
      add(fmt::format("{}: {}{}", e.error_type.value_or("error"), e.error_message.value_or(""),
                      e.recoverable.value_or(true) ? "" : " (unrecoverable)"));
      break;
    case fe::event_type::heartbeat: break;
    case fe::event_type::dropped:
      add(fmt::format("{} events (seq {}..{})", e.count.value_or(0), e.first_seq.value_or(0), e.last_seq.value_or(0)));
      break;
    case fe::event_type::run_complete:
      add(e.status.value_or("?"));
      if (e.duration_s) add("after " + format_duration(*e.duration_s));
      break;
    case fe::event_type::command_received:
      add(fmt::format("{} [{}] from {}", e.command.value_or("?"), e.command_id.value_or("?"), e.sender.value_or("?")));
      if (e.arg_json) add(*e.arg_json);
      break;
    case fe::event_type::command_done:
      add(fmt::format("{} [{}] {}", e.command.value_or("?"), e.command_id.value_or("?"), e.outcome.value_or("?")));
      if (e.message) add(*e.message);
      break;
  }
  return out;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(seconds + 0.5);
  const long long h = total / 3600, m = total / 60 % 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

std::string format_bytes(double bytes) {
  if (!std::isfinite(bytes) || bytes < 0) return "?";
  if (bytes < 1024) return fmt::format("{:.0f} B", bytes);
  constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = bytes / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, units[unit]);
}

std::string sparkline(const std::vector<double>& values, bool unicode) {
  static constexpr const char* blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
  static constexpr std::string_view ascii = "_.-=+*#";
  double lo = INFINITY, hi = -INFINITY;
  for (const double v : values) {
    if (!std::isfinite(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const std::size_t levels = unicode ? std::size(blocks) : ascii.size();
  std::string out;
  for (const double v : values) {
    if (!std::isfinite(v)) {
      out += ' ';
      continue;
    }
    // A flat series sits in the middle rather than on the floor: "no change", not "zero".
    const double at = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    const auto level = std::min(levels - 1, static_cast<std::size_t>(at * static_cast<double>(levels)));
    if (unicode) {
      out += blocks[level];
    } else {
      out += ascii[level];
    }
  }
  return out;
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    // C1 controls (U+0080..U+009F, 0xC2 0x80..0x9F in UTF-8) are escapes on some terminals too.
    const bool c1 = u == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (c1) ++i;
    out += u < 0x20 || u == 0x7f || c1 ? ' ' : text[i];
  }
  return out;
}

namespace {

// Length of the ANSI escape sequence (CSI: ESC [ ... final byte) at the start of `text`; 0 if none.
std::size_t escape_length(std::string_view text) {
  if (text.size() < 2 || text[0] != '\x1b' || text[1] != '[') return 0;
  for (std::size_t i = 2; i < text.size(); ++i) {
    if (text[i] >= 0x40 && text[i] <= 0x7e) return i + 1;
  }
  return text.size();
}

struct glyph {
  std::size_t bytes;
  std::size_t columns;
};

// The character at `text[i]`: its bytes and the terminal columns it takes. Non-ASCII goes to
// glibc's mbrtowc and wcwidth (Unicode's East Asian Width: CJK and emoji take 2, combining marks
// 0), asked under C.UTF-8 whatever the user's locale, since a character's width does not depend
// on the language. An invalid byte is one byte and one column.
glyph next_glyph(std::string_view text, std::size_t i) {
  if (static_cast<unsigned char>(text[i]) < 0x80u) return {1, 1};
  static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{});
  if (utf8 == locale_t{}) {  // no C.UTF-8 (glibc before 2.35 without the locale): a column each
    std::size_t end = i + 1;
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0u) == 0x80u) ++end;
    return {end - i, 1};
  }
  const locale_t previous = uselocale(utf8);
  mbstate_t state{};
  wchar_t wc = 0;
  const std::size_t n = mbrtowc(&wc, text.data() + i, text.size() - i, &state);
  const bool valid = n != 0 && n <= text.size() - i;  // not (size_t)-1 or -2
  const int columns = valid ? wcwidth(wc) : -1;
  uselocale(previous);
  if (!valid) return {1, 1};
  return {n, columns < 0 ? 1u : static_cast<std::size_t>(columns)};
}

}  // namespace

std::size_t display_width(std::string_view text) {
  std::size_t columns = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (const auto esc = escape_length(text.substr(i))) {
      i += esc;
      continue;
    }
    const glyph g = next_glyph(text, i);
    columns += g.columns;
    i += g.bytes;
  }
  return columns;
}

std::string fit_width(std::string_view text, std::size_t width) {
  std::string out;
  std::size_t columns = 0;
  bool cut = false;
  for (std::size_t i = 0; i < text.size();) {
    if (const auto esc = escape_length(text.substr(i))) {
      out.append(text.substr(i, esc));  // kept even past the cut: a colour's reset must still come
      i += esc;
      continue;
    }
    const glyph g = next_glyph(text, i);
    cut = cut || columns + g.columns > width;  // a wide character that would straddle the edge goes too
    if (!cut) out.append(text.substr(i, g.bytes));
    columns += g.columns;
    i += g.bytes;
  }
  return out;
}

std::string format_event(const fe::event& e, bool color) {
  // The time of day (UTC) is enough on a tail; the full timestamp is in --json.
  const std::string time = e.timestamp.size() >= 23 ? e.timestamp.substr(11, 12) : e.timestamp;
  const std::string type(fe::to_string(e.type));
  if (!color) return fmt::format("{} {} {:<15} {}", time, e.run_id, type, details(e));
  return fmt::format("\x1b[2m{}\x1b[0m {} {}{:<15}\x1b[0m {}", time, e.run_id, color_of(e.type), type, details(e));
}

std::string format_stats(const foxml::events::reader::event_stream& stream, double elapsed_s) {
  const auto& s = stream.stats();
  const double secs = elapsed_s > 0 ? elapsed_s : 1e-9;
  std::string out = fmt::format(
      "lines           {:>12}  ({:.0f}/s)\n"
      "events          {:>12}  ({:.0f}/s)\n"
      "bytes           {:>12}  ({:.1f} MiB/s)\n"
      "malformed       {:>12}\n"
      "blank           {:>12}\n"
      "duplicates      {:>12}\n"
      "gaps            {:>12}  ({} seqs missing)\n"
      "reported drops  {:>12}  seqs\n"
      "late            {:>12}\n"
      "emitters        {:>12}  ({} evicted)\n"
      "elapsed         {:>12.3f}  s\n",
      s.lines, static_cast<double>(s.lines) / secs, s.events, static_cast<double>(s.events) / secs, s.bytes,
      static_cast<double>(s.bytes) / secs / (1 << 20), s.malformed, s.blank, s.duplicates, s.gaps, s.missing,
      s.reported_drops, s.late, s.emitters, s.evicted, elapsed_s);
  if (!stream.malformed().empty()) {
    out += "recent malformed lines:\n";
    for (const auto& m : stream.malformed()) {
      out += fmt::format("  {}:{} (byte {}): {}\n", m.origin, m.line, m.offset, m.error.substr(0, 160));
    }
  }
  if (!stream.gaps().empty()) {
    out += "recent gaps:\n";
    for (const auto& g : stream.gaps()) {
      out += fmt::format("  {} {}/{}: seq {}..{} ({} events {})\n", g.key.run_id, g.key.host, g.key.pid, g.first_seq,
                         g.last_seq, g.count, g.reported_drop ? "dropped in this range, reported" : "missing, unexplained");
    }
  }
  return out;
}

std::string format_runs(const foxml::events::reader::run_tracker& tracker) {
  namespace fr = foxml::events::reader;
  std::string out;
  for (const auto& run : tracker.runs()) {
    out += fmt::format("run {}: {}, {} events", run.run_id, fr::to_string(run.status), run.events);
    if (run.world_size > 1 || run.ranks.size() > 1) {
      out += fmt::format(", ranks {}/{}", run.ranks.size(), run.world_size);
      if (!run.stale_ranks.empty()) out += fmt::format(", stale ranks {}", fmt::join(run.stale_ranks, ","));
      std::vector<std::int64_t> killed;
      for (const auto& [number, rank] : run.ranks) {
        if (rank.status == fr::run_status::killed) killed.push_back(number);
      }
      if (!killed.empty()) out += fmt::format(", killed ranks {}", fmt::join(killed, ","));
      if (run.slowest_rank) out += fmt::format(", slowest rank {}", *run.slowest_rank);
    }
    out += "\n";
  }
  return out;
}

}  // namespace events_tail
