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
Study load_study(const std::string& path);

}  // namespace tiersim
