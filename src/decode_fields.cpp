#include "decode_fields.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <type_traits>

namespace foxml::events::detail {
namespace {

// The top-level object is depth 1, so its members' containers open at depth 2.
constexpr std::size_t member_depth = 1;

// Both always inlined: called out of line, the optional they return went through the stack as a
// byte store then a wide load (a store-forwarding stall perf put at ~6 % of a line's decode).
// JSON numbers, and the strings the encoder writes for non-finite values.
[[gnu::always_inline]] inline std::optional<double> number_of(const scanned_value& v, const std::string& text) noexcept {
  switch (v.kind) {
    case value_kind::floating: return v.d;
    case value_kind::unsigned_int: return static_cast<double>(v.u);
    case value_kind::signed_int: return static_cast<double>(v.i);
    case value_kind::string:
      if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
      if (text == "Infinity") return std::numeric_limits<double>::infinity();
      if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
      return std::nullopt;
    default: return std::nullopt;
  }
}

[[gnu::always_inline]] inline std::optional<std::int64_t> integer_of(const scanned_value& v) noexcept {
  switch (v.kind) {
    case value_kind::unsigned_int:
      if (v.u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
      return static_cast<std::int64_t>(v.u);
    case value_kind::signed_int: return v.i;
    case value_kind::floating:  // 5.0 from a producer that only has floats
      if (std::isfinite(v.d) && v.d == std::floor(v.d) && std::fabs(v.d) < 9.0e15) return static_cast<std::int64_t>(v.d);
      return std::nullopt;
    default: return std::nullopt;
  }
}

// Gives each repeated metric name its first position and its last value, as ordered_json did;
// false when a name's last value is not a number.
bool merge_metrics(std::vector<std::pair<std::string, double>>& values, std::vector<std::size_t>& bad) {
  const std::size_t n = values.size();
  bool repeated = false;
  if (n <= 16) {  // the usual handful: compare pairwise, no allocation
    for (std::size_t i = 1; i < n && !repeated; ++i) {
      for (std::size_t j = 0; j < i && !repeated; ++j) repeated = values[i].first == values[j].first;
    }
    if (!repeated) return bad.empty();
  }
  std::vector<std::size_t> by_name(n), first(n);
  std::vector<char> last(n, 0);
  std::iota(by_name.begin(), by_name.end(), std::size_t{0});
  std::stable_sort(by_name.begin(), by_name.end(),
                   [&](std::size_t a, std::size_t b) { return values[a].first < values[b].first; });
  for (std::size_t g = 0; g < n;) {
    std::size_t e = g + 1;
    while (e < n && values[by_name[e]].first == values[by_name[g]].first) ++e;
    for (std::size_t k = g; k < e; ++k) first[by_name[k]] = by_name[g];
    last[by_name[e - 1]] = 1;
    repeated |= e - g > 1;
    g = e;
  }
  const bool ok = std::none_of(bad.begin(), bad.end(), [&](std::size_t i) { return last[i] != 0; });
  if (repeated) {
    for (std::size_t i = 0; i < n; ++i) {
      if (first[i] != i) values[first[i]].second = values[i].second;  // ascending: the last one wins
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (first[i] != i) continue;
      if (out != i) values[out] = std::move(values[i]);
      ++out;
    }
    values.resize(out);
  }
  return ok;
}

using metric_values = detail::decoded_t<field_kind::metric_map>;

bool read_metrics(json_cursor& c, std::optional<metric_values>& member, decode_state& st, bool& ok) {
  if (member_depth + 1 > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('{');
  auto& values = member ? *member : member.emplace();
  values.clear();
  values.reserve(4);  // the usual handful of scalars, without growing 1 -> 2 -> 4
  st.bad_metrics.clear();
  if (!c.consume('}')) {
    scanned_value v;
    do {
      std::string_view key;
      if (!c.read_key(key, st.key_scratch) || !c.expect(':')) return false;
      values.emplace_back(std::string(key), 0.0);
      if (!c.read_value(v, st.scratch, member_depth + 1)) return false;
      if (const auto n = number_of(v, st.scratch)) values.back().second = *n;
      else st.bad_metrics.push_back(values.size() - 1);
    } while (c.consume(','));
    if (!c.expect('}')) return false;
  }
  ok = merge_metrics(values, st.bad_metrics);
  return true;
}

bool read_tags(json_cursor& c, std::optional<std::vector<std::string>>& member, decode_state& st, bool& ok) {
  if (member_depth + 1 > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('[');
  auto& tags = member ? *member : member.emplace();
  tags.clear();
  ok = true;
  if (c.consume(']')) return true;
  scanned_value v;
  do {
    if (c.peek() == '"') {
      if (!c.read_string(tags.emplace_back())) return false;
    } else {
      if (!c.read_value(v, st.scratch, member_depth + 1)) return false;
      ok = false;
    }
  } while (c.consume(','));
  return c.expect(']');
}

// One member of a GPU object: a wrong-typed value reads as the member's default, as before.
bool read_gpu_member(json_cursor& c, scanned_value& v, decode_state&, std::string& out, std::size_t depth) {
  if (!c.read_value(v, out, depth)) return false;
  if (v.kind != value_kind::string) out.clear();
  return true;
}
template <class T>
bool read_gpu_member(json_cursor& c, scanned_value& v, decode_state& st, T& out, std::size_t depth) {
  if (!c.read_value(v, st.scratch, depth)) return false;
  if constexpr (std::is_same_v<T, std::int64_t>) out = integer_of(v).value_or(0);
  else if constexpr (std::is_same_v<T, double>) out = number_of(v, st.scratch).value_or(0.0);
  else out = number_of(v, st.scratch);  // an optional number: empty when not one
  return true;
}

// One GPU object: unknown members are skipped.
bool read_gpu(json_cursor& c, gpu_info& info, decode_state& st) {
  constexpr std::size_t depth = member_depth + 2;
  if (depth > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('{');
  if (c.consume('}')) return true;
  scanned_value v;
  do {
    std::string_view key;
    if (!c.read_key(key, st.key_scratch) || !c.expect(':')) return false;
#define FOXML_EVENTS_GPU_READ(gpu_key, gpu_kind, gpu_nullable)                   \
    if (key == schema::gpu_names::gpu_key) {                                   \
      if (!read_gpu_member(c, v, st, info.gpu_key, depth)) return false;       \
      continue;                                                                \
    }
    FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_READ)
#undef FOXML_EVENTS_GPU_READ
    if (!c.skip_value(depth)) return false;
  } while (c.consume(','));
  return c.expect('}');
}

bool read_gpus(json_cursor& c, std::optional<std::vector<gpu_info>>& member, decode_state& st, bool& ok) {
  if (member_depth + 1 > c.max_depth()) return c.fail(scan_error::too_deep);
  c.expect('[');
  auto& gpus = member ? *member : member.emplace();
  gpus.clear();
  ok = true;
  if (c.consume(']')) return true;
  scanned_value v;
  do {
    if (c.peek() == '{') {
      if (!read_gpu(c, gpus.emplace_back(), st)) return false;
    } else {
      if (!c.read_value(v, st.scratch, member_depth + 1)) return false;
      ok = false;
    }
  } while (c.consume(','));
  return c.expect(']');
}

// The run config is rare (run_start only): validate it like any value, then let nlohmann
// re-emit it compactly, which keeps the exact text the DOM decoder produced.
bool read_config(json_cursor& c, std::optional<std::string>& member) {
  const char* first = c.position();
  if (!c.skip_value(member_depth)) return false;
  try {
    const auto doc = nlohmann::ordered_json::parse(first, c.position());
    member = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } catch (const nlohmann::ordered_json::exception&) {
    return c.fail();
  }
  return true;
}

// The value of a wire key's member of `event`, read by its JSON shape. `ok` is false for a value of
// the wrong type (null is right for every key: it leaves the member empty).
template <field_kind kind, class Member>
bool read_member(json_cursor& c, Member& member, decode_state& st, scanned_value& v, bool& ok) {
  const char next = c.peek();
  if constexpr (kind == field_kind::metric_map) {
    if (next == '{') {
      v.kind = value_kind::object;
      return read_metrics(c, member, st, ok);
    }
  } else if constexpr (kind == field_kind::string_list) {
    if (next == '[') {
      v.kind = value_kind::array;
      return read_tags(c, member, st, ok);
    }
  } else if constexpr (kind == field_kind::gpu_list) {
    if (next == '[') {
      v.kind = value_kind::array;
      return read_gpus(c, member, st, ok);
    }
  } else if constexpr (kind == field_kind::json_object) {
    if (next == '{') return read_config(c, member);
  } else if constexpr (kind == field_kind::string) {
    if (!c.read_value(v, member ? *member : member.emplace(), member_depth)) return false;
    if (v.kind == value_kind::null) member.reset();
    ok = v.kind == value_kind::string || v.kind == value_kind::null;
    return true;
  }
  if (!c.read_value(v, st.scratch, member_depth)) return false;
  const bool null = v.kind == value_kind::null;
  if constexpr (kind == field_kind::number) {
    member = number_of(v, st.scratch);
    ok = member || null;
  } else if constexpr (kind == field_kind::integer) {
    member = integer_of(v);
    ok = member || null;
  } else if constexpr (kind == field_kind::boolean) {
    ok = v.kind == value_kind::boolean || null;
    member = v.kind == value_kind::boolean ? std::optional<bool>(v.boolean) : std::nullopt;
  } else {  // a container that is not an object/array
    ok = null;
    member.reset();
  }
  return true;
}

// Every key's name, indexed by `field`.
constexpr std::size_t name_count = field_count + 2;
constexpr std::array<std::string_view, name_count> names = [] {
  std::array<std::string_view, name_count> out{};
  // header_keys is in wire order: event_type, run_id, timestamp, seq, pid, host, rank, world_size,
  // local_rank.
  out[static_cast<std::size_t>(field::event_type)] = header_keys[0];
  out[static_cast<std::size_t>(field::run_id)] = header_keys[1];
  for (std::size_t i = 2; i < std::size(header_keys); ++i) out[i - 2] = header_keys[i];
  out[static_cast<std::size_t>(field::truncated)] = truncated_key;
  constexpr auto first_key = static_cast<std::size_t>(field::truncated) + 1;
  for (std::size_t i = 0; i < wire_key_count; ++i) out[first_key + i] = schema::keys[i].name;
  return out;
}();
static_assert(static_cast<std::size_t>(field::local_rank) + 1 == std::size(header_keys) - 2,
              "the header fields of `field` follow header_keys");

// Key lookup without a map: keys grouped by length, each compared as two (possibly overlapping)
// machine words loaded from its first and last bytes, which decide equality for keys of up to 16
// bytes. The words of the known keys are computed at compile time.
constexpr std::size_t word_width(std::size_t n) noexcept { return n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1; }

constexpr std::uint64_t const_word(std::string_view s, std::size_t at, std::size_t width) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const auto byte = static_cast<std::uint64_t>(static_cast<unsigned char>(s[at + i]));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v |= byte << (8 * (width - 1 - i));
#else
    v |= byte << (8 * i);
#endif
  }
  return v;
}

template <std::size_t width>
std::uint64_t load_word(const char* p) noexcept {
  if constexpr (width == 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  } else if constexpr (width == 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  } else if constexpr (width == 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    return w;
  } else {
    return static_cast<unsigned char>(*p);
  }
}

constexpr std::size_t longest_word_key = 16;
constexpr std::size_t longest_key = [] {
  std::size_t n = 0;
  for (auto name : names) n = std::max(n, name.size());
  return n;
}();

// Keys over 16 bytes (run_start's liveness fields, once per run) are compared whole.
field lookup_long(std::string_view k) noexcept {
  if (k.size() > longest_key) return field::unknown;
  for (std::size_t i = 0; i < name_count; ++i) {
    if (names[i].size() > longest_word_key && names[i] == k) return static_cast<field>(i);
  }
  return field::unknown;
}

struct probe {
  std::uint64_t head, tail;
  field f;
};
struct probe_table {
  probe probes[name_count];
  std::uint8_t start[longest_word_key + 2];  // keys of length n: probes[start[n]] .. probes[start[n + 1]]
};

constexpr probe_table make_probes() noexcept {
  probe_table t{};
  std::size_t next = 0;
  for (std::size_t n = 0; n <= longest_word_key; ++n) {
    t.start[n] = static_cast<std::uint8_t>(next);
    for (std::size_t i = 0; i < name_count; ++i) {
      const std::string_view name = names[i];
      if (name.size() != n || n == 0) continue;
      const std::size_t w = word_width(n);
      t.probes[next++] = probe{const_word(name, 0, w), const_word(name, n - w, w), static_cast<field>(i)};
    }
  }
  t.start[longest_word_key + 1] = static_cast<std::uint8_t>(next);
  return t;
}
constexpr probe_table probes = make_probes();

// The keys of length `n`: constant-width loads, and a loop the compiler unrolls over the few
// known keys of that length.
template <std::size_t n>
field lookup_length(const char* p) noexcept {
  constexpr std::size_t w = word_width(n);
  constexpr std::size_t first = probes.start[n], last = probes.start[n + 1];
  const std::uint64_t head = load_word<w>(p), tail = load_word<w>(p + n - w);
  for (std::size_t i = first; i < last; ++i) {
    if (probes.probes[i].head == head && probes.probes[i].tail == tail) return probes.probes[i].f;
  }
  return field::unknown;
}

}  // namespace

field lookup_field(std::string_view k) noexcept {
  const char* p = k.data();
  switch (k.size()) {
    case 1: return lookup_length<1>(p);
    case 2: return lookup_length<2>(p);
    case 3: return lookup_length<3>(p);
    case 4: return lookup_length<4>(p);
    case 5: return lookup_length<5>(p);
    case 6: return lookup_length<6>(p);
    case 7: return lookup_length<7>(p);
    case 8: return lookup_length<8>(p);
    case 9: return lookup_length<9>(p);
    case 10: return lookup_length<10>(p);
    case 11: return lookup_length<11>(p);
    case 12: return lookup_length<12>(p);
    case 13: return lookup_length<13>(p);
    case 14: return lookup_length<14>(p);
    case 15: return lookup_length<15>(p);
    case 16: return lookup_length<16>(p);
    default: return lookup_long(k);
  }
}

std::string_view field_name(field f) noexcept { return names[static_cast<std::size_t>(f)]; }

bool read_field(json_cursor& c, field f, event& ev, decode_state& st) {
  scanned_value v;
  bool ok = true;
  switch (f) {
#define FOXML_EVENTS_READ_KEY(wire_key, member, wire_kind)                             \
  case field::wire_key:                                                                 \
    if (!read_member<field_kind::wire_kind>(c, ev.member, st, v, ok)) return false;     \
    break;
    FOXML_EVENTS_WIRE_KEYS(FOXML_EVENTS_READ_KEY)
#undef FOXML_EVENTS_READ_KEY
    case field::timestamp:
    case field::host:
      if (!c.read_value(v, f == field::host ? ev.host : ev.timestamp, member_depth)) return false;
      ok = v.kind == value_kind::string;
      break;
    case field::seq:
      if (!c.read_value(v, st.scratch, member_depth)) return false;
      ok = v.kind == value_kind::unsigned_int;
      ev.seq = v.u;
      break;
    case field::pid:
    case field::rank:
    case field::world_size:
    case field::local_rank: {
      if (!c.read_value(v, st.scratch, member_depth)) return false;
      const auto n = integer_of(v);
      ok = n.has_value();
      (f == field::pid ? ev.pid : f == field::rank ? ev.rank : f == field::world_size ? ev.world_size : ev.local_rank) =
          n.value_or(0);
      break;
    }
    case field::truncated:
      if (!c.read_value(v, st.scratch, member_depth)) return false;
      ok = v.kind == value_kind::boolean;
      ev.truncated = v.boolean && ok;
      break;
    default: return c.skip_value(member_depth);  // event_type, run_id and unknown keys are the caller's
  }
  st.note(f, ok, v.kind);
  return true;
}

}  // namespace foxml::events::detail
