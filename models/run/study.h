// Studies: a baseline and mechanism variants over optional axes with replicate seeds, planned
// as a sweep whose first axis is the variant (`tiersim study`, in study.cc).
#pragma once

#include <string>

#include "configs/tiersim.pb.h"
#include "models/run/sweep.h"

namespace tiersim {

struct Study {
  config::StudySpec spec;  // base paths absolute, metrics defaulted
  SweepPlan plan;          // axis 0 is the variant
};

// Parses and checks a study spec and plans its runs; problems are ConfigErrors naming the file
// and field.
// `extra_sets` (the command line's --set) are appended to the spec's `set` list: they apply to
// every run after the spec's own sets and before the variant's, the axes' and the seed.
Study load_study(const std::string& path, const std::vector<std::string>& extra_sets = {});

}  // namespace tiersim
