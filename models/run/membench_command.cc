// `tiersim membench`: the command around memory/tools/membench (arguments, the config, the
// refresh-safe duration, the HDF5 table that scripts/plot_membench turns into curves).
#include <sstream>

#include "memory/hbm_device.h"
#include "memory/tools/dram_patterns.h"
#include "memory/tools/hbm_calibrate.h"
#include "memory/tools/membench.h"
#include "models/config/loader.h"
#include "models/core/registry.h"
#include "models/run/result_file.h"

#ifndef TIERSIM_VERSION
#define TIERSIM_VERSION "0.0.0"
#endif

namespace tiersim {

namespace {

std::vector<double> parse_list(const std::string& flag, const std::string& text) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !(v > 0)) {
      throw std::invalid_argument(flag + ": \"" + item + "\" is not a positive number");
    }
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument(flag + ": empty list");
  return out;
}

int run_membench(const std::vector<std::string>& args) {
  std::vector<std::string> files, sets;
  std::string component, out, pattern = "stream", mode = "closed", points;
  uint64_t request_bytes = 64, stride_bytes = 0, seed = 1;
  double read_fraction = 1.0, duration_us = 0;  // 0: the refresh-safe minimum
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    auto number = [&](const std::string& v) {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(d >= 0)) {
        throw std::invalid_argument(a + ": \"" + v + "\" is not a non-negative number");
      }
      return d;
    };
    if (a == "--set") {
      sets.push_back(value());
    } else if (a == "--component") {
      component = value();
    } else if (a == "--out") {
      out = value();
    } else if (a == "--pattern") {
      pattern = value();
    } else if (a == "--mode") {
      mode = value();
    } else if (a == "--points") {
      points = value();
    } else if (a == "--request-bytes") {
      request_bytes = static_cast<uint64_t>(number(value()));
    } else if (a == "--stride-bytes") {
      stride_bytes = static_cast<uint64_t>(number(value()));
    } else if (a == "--read-fraction") {
      read_fraction = number(value());
    } else if (a == "--duration-us") {
      duration_us = number(value());
    } else if (a == "--seed") {
      seed = static_cast<uint64_t>(number(value()));
    } else if (a.rfind("--", 0) == 0) {
      throw std::invalid_argument("unknown option " + a);
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) throw std::invalid_argument("no config files given");
  if (out.empty()) throw std::invalid_argument("--out FILE.h5 is required");
  if (const std::string problem = prepare_output_path(out); !problem.empty()) {
    throw std::invalid_argument("--out " + problem);
  }
  DramPattern::Kind kind;
  if (pattern == "stream") {
    kind = DramPattern::Kind::kStream;
  } else if (pattern == "random") {
    kind = DramPattern::Kind::kRandom;
  } else if (pattern == "strided") {
    kind = DramPattern::Kind::kStrided;
    if (stride_bytes == 0) throw std::invalid_argument("--pattern strided needs --stride-bytes");
  } else {
    throw std::invalid_argument("--pattern must be stream, random or strided");
  }
  if (mode != "closed" && mode != "open") {
    throw std::invalid_argument("--mode must be closed or open");
  }
  if (!(read_fraction >= 0 && read_fraction <= 1)) {
    throw std::invalid_argument("--read-fraction must be in [0, 1]");
  }
  if (!(duration_us >= 0 && duration_us <= 1e5)) {
    throw std::invalid_argument("--duration-us must be in [0, 100000]");
  }
  const std::vector<double> loads = parse_list(
      "--points", points.empty() ? (mode == "closed" ? "1,2,4,8,16,32,64,128,256,512,1024"
                                                     : "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,0.95")
                                 : points);

  LoadedConfig loaded = load_config(files, sets, ConfigScope::kSystem);
  const config::Component* hbm = nullptr;
  for (const auto& c : loaded.config.system().components()) {
    if (c.has_hbm() && (component.empty() || c.name() == component)) hbm = &c;
  }
  if (hbm == nullptr || !hbm->hbm().has_device()) {
    throw std::invalid_argument(
        "no hbm component with a device" +
        std::string(component.empty() ? "" : " named \"" + component + "\"") +
        " (merge a preset from configs/memory/)");
  }
  const DramStackSpec spec = dram_spec_from_config(hbm->hbm().device());
  // Shorter runs would end before refresh postponement is used up and overstate bandwidth.
  if (duration_us < min_calibration_duration_us(spec)) {
    std::printf("duration raised from %g to %.0f us so refresh is paid in the steady window\n",
                duration_us, min_calibration_duration_us(spec));
    duration_us = min_calibration_duration_us(spec);
  }
  if (request_bytes == 0 || request_bytes % spec.org.access_bytes != 0) {
    throw std::invalid_argument("--request-bytes must be a multiple of " +
                                std::to_string(spec.org.access_bytes));
  }

  DramPattern base;
  base.name = pattern;
  base.kind = kind;
  base.read_fraction = read_fraction;
  base.request_bytes = request_bytes;
  base.stride_bytes = stride_bytes;
  base.seed = seed;
  const Table t = membench_points(spec, base, mode == "closed", loads, duration_us);
  ResultWriter w(out);
  w.write_string("/meta/config", loaded.resolved_text());
  w.write_string("/meta/device", hbm->hbm().device().name());
  w.write_strings("/meta/args", args);
  w.write_string("/meta/version", TIERSIM_VERSION);
  w.write_scalar("/meta/peak_bytes_per_s", spec.peak_bytes_per_s(), "bytes/s");
  w.write_table("/membench", t);
  w.commit();
  std::printf("results: %s\n", out.c_str());
  return 0;
}

const CommandRegistrar kRegistrar(CommandKind{
    "membench",
    "  membench FILES... [--set k=v]... --out FILE.h5 [--component NAME]\n"
    "           [--pattern stream|random|strided] [--request-bytes N] [--stride-bytes N]\n"
    "           [--read-fraction F] [--mode closed|open] [--points LIST] [--duration-us D]\n"
    "                     bandwidth-latency sweep of an hbm component's command-level device\n"
    "                     (closed loop: outstanding requests; open loop: load as fraction of\n"
    "                     peak); scripts/plot_membench OUT.png FILE.h5... draws the curves\n",
    run_membench});

}  // namespace

}  // namespace tiersim
