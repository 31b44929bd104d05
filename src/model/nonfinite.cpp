#include "model/nonfinite.h"

#include <cmath>

#include "trace/tracer.h"

namespace plumb::trace {

namespace {

// Keeps the first tap (in the order the forward pass hands them) with a non-finite value.
class FirstNonFinite : public Tracer {
 public:
  bool wants(const std::string&) const override { return name_.empty(); }
  void tap(const std::string& name, const float* data, int64_t width, int64_t n_tokens) override {
    if (!name_.empty()) return;
    const int64_t i = first_nonfinite(data, width * n_tokens);
    if (i < 0) return;
    name_ = name;
    row_ = i / width;
    col_ = i % width;
    value_ = data[i];
  }
  const std::string& name() const { return name_; }
  int64_t row() const { return row_; }
  int64_t col() const { return col_; }
  float value() const { return value_; }

 private:
  std::string name_;
  int64_t row_ = 0;
  int64_t col_ = 0;
  float value_ = 0;
};

}  // namespace

int64_t first_nonfinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

Status explain_nonfinite_logits(Session& session, std::span<const int32_t> tokens, const std::string& what) {
  const std::string head = "the model gave non-finite logits (NaN or infinity) " + what;
  session.truncate(0);
  FirstNonFinite finder;
  Status s = session.decode(tokens, /*all_logits=*/false, &finder);
  if (!s.ok()) return Status::error(head + "; running it again to find where failed: " + s.message());
  if (finder.name().empty()) {
    return Status::error(head + "; run again with a tracer, every tap was finite (a non-deterministic fault?)");
  }
  // Batches restart the row numbering; the decode splits by n_batch, so say the row of the tap.
  return Status::errorf("%s; the first non-finite value is at tap %s (token row %lld, element %lld: %s): the "
                        "weights feeding it are damaged or overflow (plumb trace -m MODEL --tokens ... -o T.gguf "
                        "shows every tap; --check-tensors scans the weights)",
                        head.c_str(), finder.name().c_str(), (long long)finder.row(), (long long)finder.col(),
                        std::isnan(finder.value()) ? "nan" : (finder.value() > 0 ? "inf" : "-inf"));
}

}  // namespace plumb::trace
