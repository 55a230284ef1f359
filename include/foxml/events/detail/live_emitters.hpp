#pragma once
/// The registry of this process's live emitters, which the signal hook visits.

namespace foxml::events {
class training_event_emitter;
}

namespace foxml::events::detail {

// Called by the emitter's constructor and destructor. unregister_emitter waits while the signal
// hook is using the emitter, so the hook never sees a destroyed one.
void register_emitter(training_event_emitter* emitter) noexcept;
void unregister_emitter(training_event_emitter* emitter) noexcept;

// In a forked child whose parent had the signal hook: starts the child's own watcher thread. Called
// when the child's first emit starts its own worker.
void rearm_signal_hook_after_fork() noexcept;

// Creates the emitter's worker with every hooked signal blocked, so that a process-directed signal
// is never handled on the thread that has to write the terminal event.
class signals_blocked {
 public:
  signals_blocked() noexcept;
  ~signals_blocked();
  signals_blocked(const signals_blocked&) = delete;
  signals_blocked& operator=(const signals_blocked&) = delete;

 private:
  unsigned long saved_[16];  // a sigset_t, without <signal.h> in a public header
};

}  // namespace foxml::events::detail
