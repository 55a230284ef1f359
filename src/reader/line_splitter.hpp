#pragma once
// Splits a byte stream into lines, keeping a partial last line until its `\n` arrives, and caps
// the length of a line so one endless line cannot grow memory without bound.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "foxml/events/reader/source.hpp"

namespace foxml::events::reader::detail {

class line_splitter {
 public:
  explicit line_splitter(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Feeds `data` (the bytes at stream offset `offset_` onward) and hands out each complete line.
  template <class Handler>
  void feed(std::string_view data, std::string_view origin, const Handler& on_line) {
    while (!data.empty()) {
      const auto nl = data.find('\n');
      const std::string_view piece = nl == std::string_view::npos ? data : data.substr(0, nl);
      if (!skipping_) {
        const std::size_t room = max_line_bytes_ - partial_.size();
        if (piece.size() > room) {
          partial_.append(piece.substr(0, room));
          skipping_ = true;
        } else {
          partial_.append(piece);
        }
      }
      consumed_ += piece.size();
      if (nl == std::string_view::npos) return;
      consumed_ += 1;
      emit(origin, on_line);
      data.remove_prefix(nl + 1);
    }
  }

  // Hands out the unterminated rest, if any (a file read to its end without following).
  template <class Handler>
  void finish(std::string_view origin, const Handler& on_line) {
    if (partial_.empty() && !skipping_) return;
    emit(origin, on_line);
  }

  // Forgets the partial line and restarts counting at `offset` (a truncated or rotated file).
  void reset(std::uint64_t offset = 0) {
    std::string().swap(partial_);
    skipping_ = false;
    consumed_ = line_start_ = offset;
    line_no_ = 0;
  }

  // Bytes held for the line being assembled.
  std::size_t held_bytes() const noexcept { return partial_.capacity(); }
  std::uint64_t lines() const noexcept { return line_no_; }

 private:
  template <class Handler>
  void emit(std::string_view origin, const Handler& on_line) {
    ++line_no_;
    std::string_view text = partial_;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    on_line(raw_line{text, line_position{origin, line_no_, line_start_}, skipping_});
    partial_.clear();
    // A long line's buffer is given back, so an idle connection holds only what it is assembling
    // (what the socket server's memory budget counts).
    if (partial_.capacity() > keep_capacity) std::string().swap(partial_);
    skipping_ = false;
    line_start_ = consumed_;
  }

  static constexpr std::size_t keep_capacity = 1u << 16;

  std::size_t max_line_bytes_;
  std::string partial_;
  bool skipping_ = false;         // over the cap: drop bytes until the next `\n`
  std::uint64_t consumed_ = 0;    // stream offset just past the bytes fed so far
  std::uint64_t line_start_ = 0;  // stream offset of the line being assembled
  std::uint64_t line_no_ = 0;
};

// Returns the top-level `"seq"` of a JSON object line without decoding it, skipping strings and
// nested values, so the socket server can acknowledge cheaply. Empty when absent or not a plain
// non-negative integer.
inline bool top_level_seq(std::string_view s, std::uint64_t& out) {
  int depth = 0;
  bool in_string = false, key_is_seq = false;
  std::size_t string_start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (in_string) {
      // Straight to the next quote (memchr: most of a line is string bytes, and this runs for
      // every line the socket server acknowledges); a quote after an odd run of backslashes is
      // escaped, which is what skipping each backslash's next byte amounts to.
      const void* q = std::memchr(s.data() + i, '"', s.size() - i);
      if (q == nullptr) return false;
      i = static_cast<std::size_t>(static_cast<const char*>(q) - s.data());
      std::size_t backslashes = 0;
      while (i - backslashes > string_start && s[i - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 1) continue;
      in_string = false;
      key_is_seq = depth == 1 && s.substr(string_start, i - string_start) == "seq";
      continue;
    }
    const char c = s[i];
    switch (c) {
      case '"': in_string = true; string_start = i + 1; break;
      case '{': case '[': ++depth; key_is_seq = false; break;
      case '}': case ']': --depth; key_is_seq = false; break;
      case ',': key_is_seq = false; break;
      case ':':
        if (key_is_seq) {
          std::size_t j = i + 1;
          while (j < s.size() && s[j] == ' ') ++j;
          std::uint64_t v = 0;
          std::size_t digits = 0;
          for (; j < s.size() && s[j] >= '0' && s[j] <= '9' && digits < 19; ++j, ++digits) v = v * 10 + (s[j] - '0');
          if (digits == 0) return false;
          out = v;
          return true;
        }
        break;
      default: break;
    }
  }
  return false;
}

}  // namespace foxml::events::reader::detail
