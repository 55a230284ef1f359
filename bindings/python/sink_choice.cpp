#include "sink_choice.hpp"

#include <stdexcept>

#include "foxml/events/file_sink.hpp"
#include "foxml/events/sink_uri.hpp"
#ifdef FOXML_EVENTS_PY_ZMQ
#include "foxml/events/zmq_sink.hpp"
#endif

namespace foxml::events::python {

chosen_sink choose_sink(const std::optional<std::string>& spec) {
  chosen_sink chosen;
  if (!spec || spec->empty()) {
    chosen.destination = make_default_sink();
    return chosen;
  }
  const std::string& text = *spec;
  if (text == "memory://") {
    auto memory = std::make_unique<memory_sink>();
    chosen.memory = memory->store();
    chosen.destination = std::move(memory);
    return chosen;
  }
  // A plain path (os.PathLike, or a str without a scheme) keeps meaning a file, relative or not, and
  // may hold commas or '|' that make_sink would read as list separators.
  if (text.find("://") == std::string::npos) {
    chosen.destination = std::make_unique<file_sink>(text);
    return chosen;
  }
  chosen.destination = make_sink(text);
  return chosen;
}

bool zmq_sinks_available() noexcept {
#ifdef FOXML_EVENTS_PY_ZMQ
  return true;
#else
  return false;
#endif
}

void enable_zmq_sinks() {
#ifdef FOXML_EVENTS_PY_ZMQ
  enable_zmq_sink_uris();
#endif
}

}  // namespace foxml::events::python
