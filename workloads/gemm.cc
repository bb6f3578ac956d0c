#include "workloads/gemm.h"

#include <limits>

#include "models/core/registry.h"

namespace tiersim {

GemmWorkload::GemmWorkload(uint64_t m, uint64_t k, uint64_t n, config::Dtype dtype,
                           uint32_t repetitions)
    : m_(m), k_(k), n_(n), dtype_(dtype), repetitions_(repetitions) {}

void GemmWorkload::register_objects(ObjectTable& t) {
  // Each repetition (step) reads A and B once and writes C once.
  const ObjectIntent every{0, repetitions_ - 1, 1.0, 1.0, {}};
  a_ = t.add("gemm.a", ObjectClass::kActivation, a_bytes(), LayerId(), every);
  b_ = t.add("gemm.b", ObjectClass::kWeight, b_bytes(), LayerId(), every);
  c_ = t.add("gemm.c", ObjectClass::kActivation, c_bytes(), LayerId(), every);
}

bool GemmWorkload::next(Op& op) {
  if (step_ >= repetitions_) return false;
  op = Op();
  op.id = OpId(step_);
  op.kind = OpKind::kGemm;
  op.op_class = OpClass::kMatrix;
  op.step = StepIndex(step_);
  op.flops = flops();
  op.rows = static_cast<uint32_t>(m_);
  op.compute_dtype = dtype_;
  op.add_operand(Operand{a_, 0, a_bytes(), Access::kRead});
  op.add_operand(Operand{b_, 0, b_bytes(), Access::kRead});
  op.add_operand(Operand{c_, 0, c_bytes(), Access::kWrite});
  op.last_of_step = true;
  ++step_;
  return true;
}

namespace {

void validate_gemm(const config::Config& root, Validator& v) {
  const auto& g = root.workload().gemm();
  Validator gv = v.at("workload.gemm");
  gv.positive("m", g.has_m(), static_cast<double>(g.m()));
  gv.positive("k", g.has_k(), static_cast<double>(g.k()));
  gv.positive("n", g.has_n(), static_cast<double>(g.n()));
  if (g.m() > std::numeric_limits<uint32_t>::max()) gv.error("m", "must be below 2^32");
  if (g.dtype() == config::DTYPE_UNSPECIFIED) {
    gv.error("dtype", "required field is not set");
  } else if (g.dtype() == config::INT4) {
    gv.error("dtype", "INT4 GEMM operands are not supported");
  }
  gv.positive("repetitions", g.has_repetitions(), g.repetitions());
  if (root.workload().has_model()) {
    v.error("workload.model", "a gemm scenario takes no model; remove the model section");
  }
  if (root.workload().has_routing()) {
    v.error("workload.routing", "a gemm scenario has no experts to route");
  }
  if (root.workload().has_parallelism()) {
    v.error("workload.parallelism", "a gemm scenario runs on one accelerator");
  }
}

GemmWorkload make(const config::Config& root) {
  const auto& g = root.workload().gemm();
  return GemmWorkload(g.m(), g.k(), g.n(), g.dtype(), g.repetitions());
}

const WorkloadRegistrar kRegistrar(WorkloadKind{
    "gemm", "one GEMM (M x K) x (K x N), repeated: a kernel microbenchmark", validate_gemm,
    [](const config::Config& root) {
      const GemmWorkload w = make(root);
      return w.a_bytes() + w.b_bytes() + w.c_bytes();
    },
    [](const config::Config& root) -> std::unique_ptr<Workload> {
      const auto& g = root.workload().gemm();
      return std::make_unique<GemmWorkload>(g.m(), g.k(), g.n(), g.dtype(), g.repetitions());
    }});

}  // namespace

}  // namespace tiersim
