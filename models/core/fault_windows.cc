#include "models/core/fault_windows.h"

#include <algorithm>

namespace tiersim {

TimePs fault_window_end(const config::Fault& f) {
  if (f.duration_ps() == 0) return FaultWindow::kNever;
  return f.start_ps() > FaultWindow::kNever - f.duration_ps() ? FaultWindow::kNever
                                                              : f.start_ps() + f.duration_ps();
}

std::vector<FaultWindow> offline_windows(const config::System& sys, const std::string& component) {
  std::vector<FaultWindow> w;
  for (const auto& f : sys.faults()) {
    if (f.has_device_offline() && f.device_offline() == component) {
      w.push_back({f.start_ps(), fault_window_end(f)});
    }
  }
  std::sort(w.begin(), w.end(),
            [](const FaultWindow& a, const FaultWindow& b) { return a.start_ps < b.start_ps; });
  return w;
}

TimePs online_after(const std::vector<FaultWindow>& windows, TimePs t) {
  bool moved = true;
  while (moved && t != FaultWindow::kNever) {
    moved = false;
    for (const auto& w : windows) {
      if (w.start_ps <= t && t < w.end_ps) {
        t = w.end_ps;
        moved = true;
      }
    }
  }
  return t;
}

}  // namespace tiersim
