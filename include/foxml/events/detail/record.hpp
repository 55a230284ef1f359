#pragma once
// The captured form of an event: what the hot path copies into a queue slot. A compact run of
// tagged values written in schema order; the worker turns it into a JSON line. No JSON here: the
// producer only copies bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "foxml/events/event.hpp"

namespace foxml::events::detail {

enum class value_tag : std::uint8_t {
  absent,  // key omitted
  null,
  string,
  number,
  integer,
  boolean,
  metric_map,
  json_object,
  string_list,
  gpu_list,
};

inline constexpr std::uint8_t record_flag_truncated = 1;  // a string was cut at capture

// Sized so that a queue slot (record + turn counter) is four cache lines.
inline constexpr std::size_t record_inline_bytes = 216;

struct record {
  std::uint64_t seq;
  std::uint64_t ticks;  // clock ticks at emit; the worker converts them to wall time
  event_type type;
  std::uint8_t flags;
  std::uint32_t size;  // payload bytes
  std::byte* heap;     // owns the payload when it did not fit inline; freed by the worker
  std::byte inline_payload[record_inline_bytes];

  const std::byte* payload() const noexcept { return heap != nullptr ? heap : inline_payload; }
};

// Payload writers come in two passes over the same visitor code: one measures, one copies.
// Sharing the visitor keeps the byte layout and the measured size in agreement by construction.
class payload_measure {
 public:
  explicit payload_measure(std::size_t max_string) noexcept : max_string_(max_string) {}
  std::size_t size() const noexcept { return size_; }
  bool truncates() const noexcept { return truncates_; }

  void absent() noexcept { size_ += 1; }
  void null() noexcept { size_ += 1; }
  void str(std::string_view s) noexcept { size_ += 1 + string_bytes(s); }
  void opt_str(const std::optional<std::string_view>& s) noexcept { s ? str(*s) : null(); }
  void num(double) noexcept { size_ += 1 + sizeof(double); }
  void opt_num(const std::optional<double>& v) noexcept { v ? num(*v) : null(); }
  void i64(std::int64_t) noexcept { size_ += 1 + sizeof(std::int64_t); }
  void opt_i64(const std::optional<std::int64_t>& v) noexcept { v ? i64(*v) : absent(); }
  void boolean(bool) noexcept { size_ += 2; }
  void metrics(const metric* m, std::size_t n) noexcept {
    size_ += 1 + sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) size_ += string_bytes(m[i].name) + sizeof(double);
  }
  void json(std::string_view text) noexcept { size_ += 1 + string_bytes(text); }
  void strings(const std::string_view* s, std::size_t n) noexcept {
    size_ += 1 + sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) size_ += string_bytes(s[i]);
  }
  void gpus(const gpu_sample* g, std::size_t n) noexcept {
    size_ += 1 + sizeof(std::uint32_t);
    for (std::size_t i = 0; i < n; ++i) {
      size_ += 8 + string_bytes(g[i].name) + (1 + 8) + 8 + 8 + (1 + 8) + (1 + 8);
    }
  }

 private:
  std::size_t string_bytes(std::string_view s) noexcept {
    if (s.size() > max_string_) {
      truncates_ = true;
      return sizeof(std::uint32_t) + max_string_;
    }
    return sizeof(std::uint32_t) + s.size();
  }

  std::size_t max_string_;
  std::size_t size_ = 0;
  bool truncates_ = false;
};

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
inline std::string_view clip_utf8(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s;
  std::size_t cut = max;
  // s[cut] is the first byte dropped; while it continues a sequence (10xxxxxx), the kept prefix
  // would end mid-character. A UTF-8 character has at most three continuation bytes.
  for (int step = 0; step < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++step) --cut;
  return s.substr(0, cut);
}

class payload_writer {
 public:
  payload_writer(std::byte* out, std::size_t max_string) noexcept : out_(out), max_string_(max_string) {}

  void absent() noexcept { tag(value_tag::absent); }
  void null() noexcept { tag(value_tag::null); }
  void str(std::string_view s) noexcept {
    tag(value_tag::string);
    raw_string(s);
  }
  void opt_str(const std::optional<std::string_view>& s) noexcept { s ? str(*s) : null(); }
  void num(double v) noexcept {
    tag(value_tag::number);
    put(v);
  }
  void opt_num(const std::optional<double>& v) noexcept { v ? num(*v) : null(); }
  void i64(std::int64_t v) noexcept {
    tag(value_tag::integer);
    put(v);
  }
  void opt_i64(const std::optional<std::int64_t>& v) noexcept { v ? i64(*v) : absent(); }
  void boolean(bool v) noexcept {
    tag(value_tag::boolean);
    put(static_cast<std::uint8_t>(v ? 1 : 0));
  }
  void metrics(const metric* m, std::size_t n) noexcept {
    tag(value_tag::metric_map);
    put(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      raw_string(m[i].name);
      put(m[i].value);
    }
  }
  void json(std::string_view text) noexcept {
    tag(value_tag::json_object);
    raw_string(text);
  }
  void strings(const std::string_view* s, std::size_t n) noexcept {
    tag(value_tag::string_list);
    put(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) raw_string(s[i]);
  }
  void gpus(const gpu_sample* g, std::size_t n) noexcept {
    tag(value_tag::gpu_list);
    put(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      put(g[i].index);
      raw_string(g[i].name);
      optional_number(g[i].util_pct);
      put(g[i].mem_used_bytes);
      put(g[i].mem_total_bytes);
      optional_number(g[i].temperature_c);
      optional_number(g[i].power_w);
    }
  }

 private:
  void tag(value_tag t) noexcept { put(static_cast<std::uint8_t>(t)); }
  // A presence byte, then the value (0 when absent): fixed size, so measure need not look.
  void optional_number(const std::optional<double>& v) noexcept {
    put(static_cast<std::uint8_t>(v ? 1 : 0));
    put(v.value_or(0.0));
  }
  template <class T>
  void put(const T& v) noexcept {
    std::memcpy(out_, &v, sizeof(T));
    out_ += sizeof(T);
  }
  void raw_string(std::string_view s) noexcept {
    if (s.size() > max_string_) s = clip_utf8(s, max_string_);
    put(static_cast<std::uint32_t>(s.size()));
    if (!s.empty()) std::memcpy(out_, s.data(), s.size());
    out_ += s.size();
  }

  std::byte* out_;
  std::size_t max_string_;
};

// Reads a payload back in the order it was written. Used by the worker only.
class payload_reader {
 public:
  payload_reader(const std::byte* data, std::size_t size) noexcept : cur_(data), end_(data + size) {}

  bool done() const noexcept { return cur_ >= end_; }
  value_tag tag() noexcept { return static_cast<value_tag>(get<std::uint8_t>()); }
  template <class T>
  T get() noexcept {
    T v{};
    if (cur_ + sizeof(T) <= end_) std::memcpy(&v, cur_, sizeof(T));
    cur_ += sizeof(T);
    return v;
  }
  std::string_view string() noexcept {
    const auto n = get<std::uint32_t>();
    if (cur_ + n > end_) {
      cur_ = end_;
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(cur_), n);
    cur_ += n;
    return s;
  }

 private:
  const std::byte* cur_;
  const std::byte* end_;
};

}  // namespace foxml::events::detail
