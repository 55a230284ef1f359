#pragma once
// Quill 12.1 as a benchmark peer (../shared/peers/quill, header-only, never a dependency of the
// library): a file logger whose pattern is the message alone, so that each line is the same JSON
// line foxml-events writes (timestamp from Quill's own clock, formatted by its pattern).
// Only included when CMake found the headers (FOXML_BENCH_HAVE_QUILL).

#include <quill/Backend.h>
#include <quill/Frontend.h>
#include <quill/LogMacros.h>
#include <quill/Logger.h>
#include <quill/sinks/FileSink.h>
#include <quill/sinks/JsonSink.h>

#include <cstdio>
#include <string>

namespace foxml::events::bench {

// Starts Quill's backend thread once per process, with its defaults (its published configuration).
inline void start_quill_backend() {
  static const bool started = [] {
    quill::BackendOptions options;
    // Its default queue grows on a burst and says so on stderr each time; other notices still show.
    options.error_notifier = [](const std::string& message) {
      if (message.find("Allocated a new SPSC queue") == std::string::npos) std::fprintf(stderr, "quill: %s\n", message.c_str());
    };
    quill::Backend::start(options);
    return true;
  }();
  (void)started;
}

inline quill::FileSinkConfig quill_file_config() {
  quill::FileSinkConfig config;
  config.set_open_mode('w');
  config.set_filename_append_option(quill::FilenameAppendOption::None);
  return config;
}

// A logger writing `{"timestamp":"<UTC, microseconds>+00:00",<message>` lines to `path`.
inline quill::Logger* quill_json_line_logger(const std::string& name, const std::string& path) {
  start_quill_backend();
  auto sink = quill::Frontend::create_or_get_sink<quill::FileSink>(path, quill_file_config(), quill::FileEventNotifier{});
  return quill::Frontend::create_or_get_logger(
      name, std::move(sink),
      quill::PatternFormatterOptions{R"({"timestamp":"%(time)+00:00",%(message))", "%Y-%m-%dT%H:%M:%S.%Qus",
                                     quill::Timezone::GmtTime});
}

// A logger on Quill's own JSON file sink (LOGJ_* macros: named fields into its JSON object).
inline quill::Logger* quill_json_sink_logger(const std::string& name, const std::string& path) {
  start_quill_backend();
  auto sink = quill::Frontend::create_or_get_sink<quill::JsonFileSink>(path, quill_file_config(), quill::FileEventNotifier{});
  return quill::Frontend::create_or_get_logger(name, std::move(sink));
}

}  // namespace foxml::events::bench
