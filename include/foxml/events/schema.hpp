#pragma once
/// The wire schema: for every event type, its fields in the order they are written, whether each
/// may be null or absent, and where its value comes from in the struct the emit call takes. The
/// keys themselves (names, JSON shapes, `event` members) are in schema_keys.hpp.
///
/// Everything else derives from these lists: the emitter captures a type's fields by walking its
/// list over the emit call's struct (so the capture order is the wire order by construction, and
/// a value of the wrong shape for its key does not compile), the encoder writes keys from
/// `fields_of`, the decoder and the Python dicts dispatch on `wire_key`, and the tests compare the
/// Python stub and DESIGN.md's copy against `fields_of`.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "foxml/events/event.hpp"
#include "foxml/events/schema_keys.hpp"

namespace foxml::events {

/// One field of an event type. `nullable` fields may be `null`; `optional` ones may be absent.
struct field_spec {
  std::string_view key;
  field_kind kind;
  bool nullable;
  bool optional;
};

/// A view of a contiguous run of field specs.
struct field_list {
  const field_spec* first = nullptr;
  std::size_t count = 0;
  constexpr const field_spec* begin() const noexcept { return first; }
  constexpr const field_spec* end() const noexcept { return first + count; }
  constexpr std::size_t size() const noexcept { return count; }
};

namespace schema {

/// Whether a field always has a value, is always present but may be null, or may be left out.
/// An empty value (std::nullopt, no list items, no config text) is written as `null` for a
/// `nullable` field and left out for an `optional` one.
enum class presence : std::uint8_t { required, nullable, optional };

/// The items of a list field, held in two members of an emit struct (pointer and count).
template <class T>
struct list_view {
  const T* data;
  std::size_t size;
};

/// The run config: the text of a JSON object (empty: none).
struct json_text {
  std::string_view text;
};

/// One field of an event type: its key, its presence, and how to read its value from the emit
/// call's struct (`get(in)`). The reader is a type, not a pointer held at run time, so the capture
/// compiles to plain loads.
template <wire_key Key, presence How, class Get>
struct field {
  static constexpr wire_key key = Key;
  static constexpr presence how = How;
  Get get;
};

/// Reads the data member `Member` (a reference to it).
template <auto Member>
struct member_of {
  template <class Input>
  constexpr decltype(auto) operator()(Input& in) const noexcept {
    return (in.*Member);
  }
};

/// A field read from data member `Member` of the emit struct.
template <wire_key Key, presence How, auto Member>
constexpr field<Key, How, member_of<Member>> bind() noexcept {
  return {};
}

/// A field read by `get` (a function object), for a field held in two members.
template <wire_key Key, presence How, class Get>
constexpr field<Key, How, Get> bind(Get get) noexcept {
  return {get};
}

/// The schema of one event type: `input` is the struct its emit call takes, `fields` its fields
/// in wire order.
template <event_type Type>
struct of;

using k = wire_key;
inline constexpr presence required = presence::required;
inline constexpr presence nullable = presence::nullable;
inline constexpr presence optional = presence::optional;

template <>
struct of<event_type::run_start> {
  using input = run_start_info;
  static constexpr auto config = [](const input& in) noexcept { return json_text{in.config_json}; };
  static constexpr auto tags = [](const input& in) noexcept {
    return list_view<std::string_view>{in.tags, in.tag_count};
  };
  static constexpr auto fields = std::make_tuple(
      bind<k::name, optional, &input::name>(),
      bind<k::config, optional>(config),
      bind<k::tags, optional>(tags),
      bind<k::total_steps, optional, &input::total_steps>(),
      bind<k::total_epochs, optional, &input::total_epochs>(),
      bind<k::process_start_time, optional, &input::process_start_time>(),
      bind<k::heartbeat_interval_s, optional, &input::heartbeat_interval_s>(),
      bind<k::stale_after_heartbeats, optional, &input::stale_after_heartbeats>());
};

template <>
struct of<event_type::progress> {
  using input = progress_update;
  static constexpr auto fields = std::make_tuple(
      bind<k::stage, required, &input::stage>(),
      bind<k::progress_pct, required, &input::progress_pct>(),
      bind<k::current_target, nullable, &input::current_target>(),
      bind<k::targets_complete, required, &input::targets_complete>(),
      bind<k::targets_total, required, &input::targets_total>(),
      bind<k::step, optional, &input::step>(),
      bind<k::total_steps, optional, &input::total_steps>(),
      bind<k::epoch, optional, &input::epoch>(),
      bind<k::total_epochs, optional, &input::total_epochs>());
};

template <>
struct of<event_type::stage_change> {
  using input = stage_change_info;
  static constexpr auto fields = std::make_tuple(
      bind<k::previous_stage, nullable, &input::previous_stage>(),
      bind<k::new_stage, required, &input::new_stage>());
};

template <>
struct of<event_type::target_complete> {
  using input = target_result;
  static constexpr auto metrics = [](const input& in) noexcept {
    return list_view<metric>{in.metrics, in.metric_count};
  };
  static constexpr auto fields = std::make_tuple(
      bind<k::target, required, &input::target>(),
      bind<k::status, required, &input::status>(),
      bind<k::models_trained, required, &input::models_trained>(),
      bind<k::best_auc, nullable, &input::best_auc>(),
      bind<k::metrics, optional>(metrics));
};

template <>
struct of<event_type::metrics> {
  using input = metrics_sample;
  static constexpr auto metrics = [](const input& in) noexcept {
    return list_view<metric>{in.metrics, in.metric_count};
  };
  static constexpr auto fields = std::make_tuple(
      bind<k::step, required, &input::step>(),
      bind<k::epoch, optional, &input::epoch>(),
      bind<k::metrics, required>(metrics));
};

template <>
struct of<event_type::log> {
  using input = log_entry;
  static constexpr auto fields = std::make_tuple(
      bind<k::level, required, &input::level>(),
      bind<k::message, required, &input::message>());
};

template <>
struct of<event_type::resources> {
  using input = resource_sample;
  static constexpr auto gpus = [](const input& in) noexcept {
    return list_view<gpu_sample>{in.gpus, in.gpu_count};
  };
  static constexpr auto fields = std::make_tuple(
      bind<k::cpu_pct, required, &input::cpu_pct>(),
      bind<k::rss_bytes, required, &input::rss_bytes>(),
      bind<k::mem_used_bytes, required, &input::mem_used_bytes>(),
      bind<k::mem_total_bytes, required, &input::mem_total_bytes>(),
      bind<k::gpus, required>(gpus));
};

template <>
struct of<event_type::error> {
  using input = error_info;
  static constexpr auto fields = std::make_tuple(
      bind<k::error_message, required, &input::error_message>(),
      bind<k::error_type, required, &input::error_type>(),
      bind<k::recoverable, required, &input::recoverable>());
};

struct no_fields {};

template <>
struct of<event_type::heartbeat> {
  using input = no_fields;
  static constexpr std::tuple<> fields{};
};

template <>
struct of<event_type::dropped> {
  using input = drop_report;
  static constexpr auto fields = std::make_tuple(
      bind<k::count, required, &input::count>(),
      bind<k::first_seq, required, &input::first_seq>(),
      bind<k::last_seq, required, &input::last_seq>());
};

template <>
struct of<event_type::run_complete> {
  using input = run_end;
  static constexpr auto fields = std::make_tuple(
      bind<k::status, required, &input::status>(),
      bind<k::duration_s, nullable, &input::duration_s>());
};

template <>
struct of<event_type::command_received> {
  using input = command_ack;
  static constexpr auto arg = [](const input& in) noexcept { return json_text{in.arg_json}; };
  static constexpr auto fields = std::make_tuple(
      bind<k::command, required, &input::command>(),
      bind<k::command_id, required, &input::command_id>(),
      bind<k::sender, required, &input::sender>(),
      bind<k::arg, optional>(arg));
};

template <>
struct of<event_type::command_done> {
  using input = command_outcome;
  static constexpr auto fields = std::make_tuple(
      bind<k::command_id, required, &input::command_id>(),
      bind<k::command, required, &input::command>(),
      bind<k::outcome, required, &input::outcome>(),
      bind<k::message, optional, &input::message>());
};

namespace detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct unwrap {
  using type = T;
};
template <class T>
struct unwrap<std::optional<T>> {
  using type = T;
};

// The shape a value type captures as; `void` for a type no key can carry.
template <class T>
constexpr field_kind captured_kind() noexcept {
  using V = typename unwrap<T>::type;
  if constexpr (std::is_same_v<V, std::string_view>) return field_kind::string;
  else if constexpr (std::is_same_v<V, double>) return field_kind::number;
  else if constexpr (std::is_same_v<V, std::int64_t>) return field_kind::integer;
  else if constexpr (std::is_same_v<V, bool>) return field_kind::boolean;
  else if constexpr (std::is_same_v<V, list_view<metric>>) return field_kind::metric_map;
  else if constexpr (std::is_same_v<V, json_text>) return field_kind::json_object;
  else if constexpr (std::is_same_v<V, list_view<std::string_view>>) return field_kind::string_list;
  else if constexpr (std::is_same_v<V, list_view<gpu_sample>>) return field_kind::gpu_list;
  else static_assert(sizeof(T) == 0, "no wire shape for this value type");
}

template <class V>
constexpr bool is_empty(const V& v) noexcept {
  if constexpr (is_optional<V>::value) return !v.has_value();
  else if constexpr (std::is_same_v<V, json_text>) return v.text.empty();
  else if constexpr (captured_kind<V>() == field_kind::metric_map || captured_kind<V>() == field_kind::string_list ||
                     captured_kind<V>() == field_kind::gpu_list) return v.size == 0;
  else return false;
}

template <class W, class V>
void put_value(W& w, const V& v) noexcept {
  if constexpr (std::is_same_v<V, std::string_view>) w.str(v);
  else if constexpr (std::is_same_v<V, double>) w.num(v);
  else if constexpr (std::is_same_v<V, std::int64_t>) w.i64(v);
  else if constexpr (std::is_same_v<V, bool>) w.boolean(v);
  else if constexpr (std::is_same_v<V, list_view<metric>>) w.metrics(v.data, v.size);
  else if constexpr (std::is_same_v<V, json_text>) w.json(v.text);
  else if constexpr (std::is_same_v<V, list_view<std::string_view>>) w.strings(v.data, v.size);
  else if constexpr (std::is_same_v<V, list_view<gpu_sample>>) w.gpus(v.data, v.size);
  else put_value(w, *v);  // a std::optional known to hold a value
}

template <class W, class Input, wire_key Key, presence How, class Get>
void put_field(W& w, const Input& in, const field<Key, How, Get>& f) noexcept {
  const auto& value = f.get(in);
  using V = std::decay_t<decltype(value)>;
  static_assert(captured_kind<V>() == kind_of(Key), "the value's type does not match its key's JSON shape");
  static_assert(How != presence::required || !is_optional<V>::value, "a required field cannot be std::optional");
  if (How != presence::required && is_empty(value)) {
    How == presence::optional ? w.absent() : w.null();
  } else {
    put_value(w, value);
  }
}

template <wire_key Key, presence How, class Get>
constexpr field_spec spec_of(const field<Key, How, Get>&) noexcept {
  return {name_of(Key), kind_of(Key), How != presence::required, How == presence::optional};
}

template <class Tuple, std::size_t... I>
constexpr auto specs_of(const Tuple& fields, std::index_sequence<I...>) noexcept {
  return std::array<field_spec, sizeof...(I)>{spec_of(std::get<I>(fields))...};
}

}  // namespace detail

/// Writes the fields of a `Type` event, read from `in`, to the payload writer `w` in wire order.
/// The emitter's only way to capture an event: there is no per-type positional visitor to keep
/// in step with the lists above.
template <event_type Type, class W>
void write_fields(W& w, const typename of<Type>::input& in) noexcept {
  std::apply([&](const auto&... f) { (detail::put_field(w, in, f), ...); }, of<Type>::fields);
}

/// The field specs of `Type`, in wire order.
template <event_type Type>
inline constexpr auto specs = detail::specs_of(
    of<Type>::fields, std::make_index_sequence<std::tuple_size_v<std::decay_t<decltype(of<Type>::fields)>>>{});

}  // namespace schema

/// Fields of one GPU object inside `resources.gpus`.
inline constexpr field_spec gpu_fields[] = {
#define FOXML_EVENTS_GPU_SPEC(key, kind, nullable) {#key, field_kind::kind, nullable, nullable},
    FOXML_EVENTS_GPU_KEYS(FOXML_EVENTS_GPU_SPEC)
#undef FOXML_EVENTS_GPU_SPEC
};

/// Header fields that every event carries, in wire order.
inline constexpr std::string_view header_keys[] = {"event_type", "run_id", "timestamp",  "seq",       "pid",
                                                   "host",       "rank",   "world_size", "local_rank"};
/// The trailing header field an event carries when the emitter shortened one of its strings.
inline constexpr std::string_view truncated_key = "truncated";

namespace schema::detail {
template <event_type Type>
constexpr field_list list_of() noexcept {
  return field_list{schema::specs<Type>.data(), schema::specs<Type>.size()};
}
}  // namespace schema::detail

/// Returns the type-specific fields of `type`, in wire order.
constexpr field_list fields_of(event_type type) noexcept {
  using schema::detail::list_of;
  switch (type) {
    case event_type::run_start: return list_of<event_type::run_start>();
    case event_type::progress: return list_of<event_type::progress>();
    case event_type::stage_change: return list_of<event_type::stage_change>();
    case event_type::target_complete: return list_of<event_type::target_complete>();
    case event_type::metrics: return list_of<event_type::metrics>();
    case event_type::log: return list_of<event_type::log>();
    case event_type::resources: return list_of<event_type::resources>();
    case event_type::error: return list_of<event_type::error>();
    case event_type::heartbeat: return {};
    case event_type::dropped: return list_of<event_type::dropped>();
    case event_type::run_complete: return list_of<event_type::run_complete>();
    case event_type::command_received: return list_of<event_type::command_received>();
    case event_type::command_done: return list_of<event_type::command_done>();
  }
  return {};
}

namespace schema::detail {
// Every key belongs to at least one event type: a key no type carries would be decoded and shown
// but never written.
constexpr bool every_key_is_used() noexcept {
  for (std::size_t key = 0; key < wire_key_count; ++key) {
    bool used = false;
    for (std::size_t type = 0; type < event_type_count && !used; ++type) {
      for (const field_spec& spec : fields_of(static_cast<event_type>(type))) used |= spec.key == keys[key].name;
    }
    if (!used) return false;
  }
  return true;
}
static_assert(every_key_is_used(), "a wire key that no event type carries");
}  // namespace schema::detail

}  // namespace foxml::events
