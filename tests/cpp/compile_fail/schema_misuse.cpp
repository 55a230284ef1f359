// Capturing an event goes through the schema's field list (schema.hpp), so the mistakes a
// positional visitor made silently do not compile. tests/cpp/CMakeLists.txt compiles this file
// once per CASE and expects each error message; CASE 0 is the control that must compile.
#include "foxml/events/detail/record.hpp"
#include "foxml/events/schema.hpp"

namespace fe = foxml::events;

void capture() {
  fe::detail::payload_measure w(64);
#if CASE == 0
  fe::schema::write_fields<fe::event_type::progress>(w, fe::progress_update{});
#elif CASE == 1  // a progress event captured from another type's struct
  fe::schema::write_fields<fe::event_type::progress>(w, fe::target_result{});
#elif CASE == 2  // a key bound to a member of another JSON shape (a string under best_auc)
  constexpr auto wrong = fe::schema::bind<fe::wire_key::best_auc, fe::schema::nullable, &fe::progress_update::stage>();
  fe::schema::detail::put_field(w, fe::progress_update{}, wrong);
#elif CASE == 3  // a required field read from a member that may be empty
  constexpr auto wrong = fe::schema::bind<fe::wire_key::step, fe::schema::required, &fe::progress_update::step>();
  fe::schema::detail::put_field(w, fe::progress_update{}, wrong);
#endif
}
