#include "sink_choice.hpp"

#include <stdexcept>

#include "foxml/events/defaults.hpp"
#include "foxml/events/file_sink.hpp"

namespace foxml::events::python {

chosen_sink choose_sink(const std::optional<std::string>& spec) {
  chosen_sink chosen;
  if (!spec || spec->empty()) {
    chosen.destination = std::make_unique<file_sink>(default_event_file());
    return chosen;
  }
  const std::string& text = *spec;
  if (text == "memory://") {
    auto memory = std::make_unique<memory_sink>();
    chosen.memory = memory->store();
    chosen.destination = std::move(memory);
    return chosen;
  }
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string::npos) {
    chosen.destination = std::make_unique<file_sink>(text);
    return chosen;
  }
  const std::string scheme = text.substr(0, scheme_end);
  if (scheme == "file") {
    const std::string path = text.substr(scheme_end + 3);  // file:///abs/path -> /abs/path
    if (path.empty() || path.front() != '/') {
      throw std::invalid_argument("foxml_events: a file URI needs an absolute path (file:///dir/events.jsonl), got '" +
                                  text + "'");
    }
    chosen.destination = std::make_unique<file_sink>(path);
    return chosen;
  }
  throw std::invalid_argument("foxml_events: sink scheme '" + scheme +
                              "://' is not available in this build (use a file path, file:///path or memory://)");
}

}  // namespace foxml::events::python
