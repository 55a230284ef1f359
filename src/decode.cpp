// decode_line: one pass over the line with a strict scanner (json_scan), landing each known key
// straight in its `event` member. The contract is the former nlohmann::ordered_json DOM decoder's:
// the same lines accepted, the same values, the same error for each rejected line (malformed
// lines are handed to nlohmann once more on the error path, for its message).
#include <nlohmann/json.hpp>

#include "decode_fields.hpp"
#include "foxml/events/codec.hpp"
#include "json_scan.hpp"

namespace foxml::events {
namespace {

using detail::decode_state;
using detail::field;
using detail::json_cursor;
using detail::scan_error;

decode_result failure(std::string message) { return decode_result{std::nullopt, std::move(message)}; }

// nested_deeper_than (json_scan) only on the error path: the DOM decoder checked depth before
// syntax, and a line both malformed and too deep keeps reporting depth.
decode_result too_deep(const decode_limits& limits) {
  return failure("nested deeper than " + std::to_string(limits.max_depth) + " levels");
}

decode_result malformed(std::string_view line, const decode_limits& limits, scan_error error) {
  if (error == scan_error::too_deep || detail::nested_deeper_than(line, limits.max_depth)) return too_deep(limits);
  try {
    const auto doc = nlohmann::ordered_json::parse(line.begin(), line.end());
    (void)doc;
  } catch (const nlohmann::ordered_json::exception& e) {
    return failure(std::string("malformed JSON: ") + e.what());
  }
  return failure("malformed JSON: rejected by the strict scanner");  // nlohmann would have taken it
}

// The top-level object, the cursor on its '{'.
bool read_object(json_cursor& c, event& ev, decode_state& st) {
  if (c.max_depth() < 1) return c.fail(scan_error::too_deep);
  c.expect('{');
  if (c.consume('}')) return true;
  detail::scanned_value v;
  do {
    std::string_view key;
    if (!c.read_key(key, st.key_scratch) || !c.expect(':')) return false;
    const field f = detail::lookup_field(key);
    if (f == field::event_type) {
      if (!c.read_value(v, st.type_text, 1)) return false;
      st.has_type = v.kind == detail::value_kind::string;
    } else if (f == field::run_id) {
      if (!c.read_value(v, ev.run_id, 1)) return false;
      st.has_run_id = v.kind == detail::value_kind::string;
    } else if (f == field::unknown) {
      if (!c.skip_value(1)) return false;  // unknown fields are skipped, but must still be JSON
    } else if (!detail::read_field(c, f, ev, st)) {
      return false;
    }
  } while (c.consume(','));
  return c.expect('}');
}

// The first wrong-typed field in the order keys first appeared, with the DOM decoder's words.
std::string wrong_type_message(const decode_state& st) {
  std::size_t first = detail::field_count;
  for (std::size_t i = 0; i < detail::field_count; ++i) {
    if ((st.wrong >> i & 1u) && (first == detail::field_count || st.order[i] < st.order[first])) first = i;
  }
  const auto f = static_cast<field>(first);
  const std::string name(detail::field_name(f));
  switch (f) {
    case field::timestamp: return "timestamp is not a string";
    case field::host: return "host is not a string";
    case field::seq: return "seq is not a non-negative integer";
    case field::pid:
    case field::rank:
    case field::world_size:
    case field::local_rank: return name + " is not an integer";
    default:
      return "field '" + name + "' has the wrong type (" + detail::type_name(st.wrong_kind[first]) + ")";
  }
}

}  // namespace

namespace {

// Fills `out` in place: the event is built inside the result, never moved into it (an event is
// some forty members; moving one cost more than a tenth of a line's decode).
void decode_into(std::string_view line, const decode_limits& limits, decode_result& out) {
  auto fail = [&out](decode_result r) {
    out.value.reset();
    out.error = std::move(r.error);
  };
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits.max_line_bytes) {
    return fail(failure("line of " + std::to_string(line.size()) + " bytes is over the cap of " +
                        std::to_string(limits.max_line_bytes)));
  }
  if (line.empty()) return fail(failure("empty line"));

  std::string_view body = line;
  if (body.size() >= 3 && body.compare(0, 3, "\xEF\xBB\xBF") == 0) body.remove_prefix(3);
  json_cursor c(body.data(), body.data() + body.size(), limits.max_depth);
  event& ev = out.value.emplace();
  decode_state st;
  bool object = c.peek() == '{';
  if (object) read_object(c, ev, st);
  else c.skip_value(0);
  c.skip_ws();
  if (!c.failed() && !c.at_end()) c.fail();
  if (c.failed()) return fail(malformed(line, limits, c.error()));
  if (!object) return fail(failure("not a JSON object"));

  if (!st.has_type) return fail(failure("missing event_type"));
  const auto type = parse_event_type(st.type_text);
  if (!type) return fail(failure("unknown event_type '" + st.type_text + "'"));
  ev.type = *type;
  if (!st.has_run_id) return fail(failure("missing run_id"));
  if (st.wrong != 0) return fail(failure(wrong_type_message(st)));
  if (st.seen & (std::uint64_t{1} << static_cast<unsigned>(field::timestamp))) {
    ev.unix_us = parse_timestamp_us(ev.timestamp).value_or(0);
  }
}

}  // namespace

decode_result decode_line(std::string_view line, const decode_limits& limits) {
  decode_result result;
  decode_into(line, limits, result);
  return result;
}

}  // namespace foxml::events
