// A user-defined sink: keeps the latest N lines in a bounded in-memory ring, for an in-process
// status page or a crash report ("what was the job doing last?"). Writing a sink takes write()
// and describe(); see the contract in foxml/events/sink.hpp and "Writing a sink" in the README.
// Usage: custom_sink [LINES_KEPT]
#include <foxml/events.hpp>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fe = foxml::events;

// The ring, shared between the sink (written by the emitter's worker thread) and its readers.
class line_ring {
 public:
  explicit line_ring(std::size_t capacity) : capacity_(capacity) {}

  // Called by the sink only; may throw std::bad_alloc, which the sink turns into a refusal.
  void push(std::string_view line) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (lines_.size() == capacity_) lines_.pop_front();
    lines_.emplace_back(line.substr(0, line.size() - 1));  // without the '\n'
    ++total_;
  }
  std::vector<std::string> latest() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {lines_.begin(), lines_.end()};
  }
  std::size_t total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_;
  }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<std::string> lines_;
  std::size_t total_ = 0;
};

class ring_sink final : public fe::sink {
 public:
  explicit ring_sink(std::shared_ptr<line_ring> ring) : ring_(std::move(ring)) {}

  // Takes lines in order and says how many it took. Memory is the only thing that can fail here,
  // and write() must not throw: what could not be kept is refused (the emitter retries, then counts it).
  std::size_t write(const fe::line_batch& batch) noexcept override {
    std::size_t taken = 0;
    try {
      for (; taken < batch.size(); ++taken) ring_->push(batch.line(taken));
    } catch (...) {
    }
    return taken;
  }
  std::string describe() const override { return "ring://" + std::to_string(ring_->capacity()); }

 private:
  std::shared_ptr<line_ring> ring_;
};

int main(int argc, char** argv) {
  const std::size_t kept = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 5;
  auto ring = std::make_shared<line_ring>(kept);
  {
    fe::training_event_emitter emitter("custom-sink-demo", std::make_unique<ring_sink>(ring));
    emitter.emit_run_start();
    for (int step = 0; step < 20; ++step) emitter.emit_metrics(step, {{"loss", 1.0 / (step + 1)}});
    emitter.emit_run_complete("success");
    if (!emitter.close().ok()) return 1;
  }
  std::printf("kept %zu of %zu lines:\n", ring->latest().size(), ring->total());
  for (const std::string& line : ring->latest()) {
    const fe::decode_result decoded = fe::decode_line(line);
    if (!decoded) {
      std::printf("  undecodable: %s\n", decoded.error.c_str());
      return 1;
    }
    std::printf("  seq %llu %s\n", static_cast<unsigned long long>(decoded.value->seq),
                std::string(fe::to_string(decoded.value->type)).c_str());
  }
  return 0;
}
