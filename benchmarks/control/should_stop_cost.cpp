// The training loop's cost of asking for commands: should_stop() (one atomic load), paused(), and
// poll_command() with nothing waiting, per call, averaged over a tight loop (a per-call TSC read
// costs more than the call). Also the emit call with and without a command callback registered:
// the callback check is one relaxed load on the emit path.
// Usage: should_stop_cost [calls]
#include <chrono>
#include <cstdio>
#include <foxml/events.hpp>
#include <string>

#include "../common/bench_support.hpp"

namespace fe = foxml::events;
namespace fb = foxml::events::bench;

namespace {

template <class Call>
double ns_per_call(std::size_t calls, Call call) {
  double best = 1e300;
  for (int round = 0; round < 5; ++round) {  // the best of five: the machine is shared
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < calls; ++i) {
      bool r = call();
      asm volatile("" : : "r"(r) : "memory");  // keep the call, and one load per iteration
    }
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(calls));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t calls = argc > 1 ? std::stoul(argv[1]) : 50'000'000;
  fe::emitter_options options;
  options.queue_capacity = 1 << 16;
  fe::training_event_emitter emitter("bench-run", std::make_unique<fe::file_sink>(fb::scratch_file("control.jsonl")),
                                     options);
  std::printf("Control calls from the training loop, ns per call (%zu calls, best of 5)\n\n", calls);
  std::printf("| %-36s | %8s |\n|%s|\n", "call", "ns", std::string(49, '-').c_str());
  std::printf("| %-36s | %8.2f |\n", "should_stop()", ns_per_call(calls, [&] { return emitter.should_stop(); }));
  std::printf("| %-36s | %8.2f |\n", "paused()", ns_per_call(calls, [&] { return emitter.paused(); }));
  std::printf("| %-36s | %8.2f |\n", "poll_command(), none waiting",
              ns_per_call(calls / 10, [&] { return emitter.poll_command().has_value(); }));

  // The emit path with the callback flag in it, without and with a callback registered.
  const std::size_t emits = std::min<std::size_t>(calls / 50, 400'000);
  const auto emit = [&] {
    auto samples = fb::time_calls([&](std::size_t i) { emitter.emit_progress("training", static_cast<double>(i)); },
                                  emits);
    return fb::summarize(samples);
  };
  const auto plain = emit();
  emitter.on_command([](const fe::command&) {});
  const auto with_callback = emit();
  std::printf("\nemit_progress p50 / p99 ns: %.1f / %.1f without a callback, %.1f / %.1f with one registered\n",
              plain.p50, plain.p99, with_callback.p50, with_callback.p99);
  emitter.close();
  return 0;
}
