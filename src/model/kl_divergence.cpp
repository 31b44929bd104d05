#include "model/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <tuple>

namespace plumb {

namespace {

constexpr char kMagic[8] = {'P', 'L', 'U', 'M', 'B', 'K', 'L', 'D'};
constexpr uint32_t kVersion = 1;
constexpr float kStep = kKldRange / 65535.0f;
constexpr size_t kHeaderWords = 5;  // version, n_ctx, n_vocab, n_chunks, n_tokens

size_t row_bytes(int64_t n_vocab) { return 2 * sizeof(float) + static_cast<size_t>(n_vocab) * sizeof(uint16_t); }

// Linear interpolation between order statistics, as llama-perplexity computes percentiles.
double percentile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0.0;
  if (fraction <= 0) return sorted.front();
  if (fraction >= 1) return sorted.back();
  double p = fraction * static_cast<double>(sorted.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<double>(ip);
  return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

// Mean of values whose sum and sum of squares are given, and the standard error of that mean.
std::pair<double, double> mean_and_error(double sum, double sum2, int64_t count) {
  const double mean = sum / static_cast<double>(count);
  const double var = sum2 / static_cast<double>(count) - mean * mean;
  const double err = count > 1 && var > 0 ? std::sqrt(var / static_cast<double>(count - 1)) : 0.0;
  return {mean, err};
}

// One row in the file's form: the best log-probability and each one's distance below it in
// steps of kStep.
float encode_row(const double* logprobs, int64_t n_vocab, uint16_t* q) {
  double best = logprobs[0];
  for (int64_t i = 1; i < n_vocab; ++i) best = std::max(best, logprobs[i]);
  const float max_lp = static_cast<float>(best);
  for (int64_t i = 0; i < n_vocab; ++i) {
    const double steps = std::round((max_lp - logprobs[i]) / kStep);
    q[i] = static_cast<uint16_t>(std::clamp(steps, 0.0, 65535.0));
  }
  return max_lp;
}

double decode_value(float max_lp, float step, uint16_t q) {
  return static_cast<double>(max_lp) - static_cast<double>(q) * step;
}

}  // namespace

void round_trip_logprobs(std::vector<double>* logprobs) {
  const int64_t n = static_cast<int64_t>(logprobs->size());
  std::vector<uint16_t> q(logprobs->size());
  const float max_lp = encode_row(logprobs->data(), n, q.data());
  for (int64_t i = 0; i < n; ++i) (*logprobs)[static_cast<size_t>(i)] = decode_value(max_lp, kStep, q[static_cast<size_t>(i)]);
}

Result<std::unique_ptr<KldBaseWriter>> KldBaseWriter::create(const std::string& path, int n_ctx, int64_t n_vocab,
                                                             int n_chunks, const std::vector<int32_t>& tokens) {
  std::unique_ptr<KldBaseWriter> w(new KldBaseWriter());
  w->n_vocab_ = n_vocab;
  PLUMB_ASSIGN_OR_RETURN(w->out_, OutputFile::create(path));
  const uint32_t header[kHeaderWords] = {kVersion, static_cast<uint32_t>(n_ctx), static_cast<uint32_t>(n_vocab),
                                         static_cast<uint32_t>(n_chunks), static_cast<uint32_t>(tokens.size())};
  PLUMB_RETURN_IF_ERROR(w->out_->write(kMagic, sizeof(kMagic)));
  PLUMB_RETURN_IF_ERROR(w->out_->write(header, sizeof(header)));
  PLUMB_RETURN_IF_ERROR(w->out_->write(tokens.data(), tokens.size() * sizeof(int32_t)));
  w->row_.resize(static_cast<size_t>(n_vocab));
  return w;
}

Status KldBaseWriter::write_row(const double* logprobs) {
  const float max_lp = encode_row(logprobs, n_vocab_, row_.data());
  const float head[2] = {max_lp, kStep};
  PLUMB_RETURN_IF_ERROR(out_->write(head, sizeof(head)));
  return out_->write(row_.data(), row_.size() * sizeof(uint16_t));
}

Status KldBaseWriter::finish() {
  if (out_ == nullptr) return Status();
  Status s = out_->commit();
  out_.reset();
  return s;
}

Result<std::unique_ptr<KldBaseReader>> KldBaseReader::open(const std::string& path) {
  std::unique_ptr<KldBaseReader> r(new KldBaseReader());
  r->path_ = path;
  r->file_ = std::fopen(path.c_str(), "rb");
  if (r->file_ == nullptr) return Status::errorf("%s: cannot open KL-divergence base file: %s", path.c_str(), std::strerror(errno));
  char magic[sizeof(kMagic)];
  uint32_t header[kHeaderWords];
  if (std::fread(magic, 1, sizeof(magic), r->file_) != sizeof(magic) || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0 ||
      std::fread(header, sizeof(uint32_t), kHeaderWords, r->file_) != kHeaderWords) {
    return Status::errorf("%s: not a plumb KL-divergence base file (made by plumb ppl --kl-divergence-base)",
                          path.c_str());
  }
  if (header[0] != kVersion) return Status::errorf("%s: unsupported version %u", path.c_str(), header[0]);
  r->n_ctx_ = static_cast<int>(header[1]);
  r->n_vocab_ = header[2];
  r->n_chunks_ = static_cast<int>(header[3]);
  const uint64_t n_tokens = header[4];
  if (r->n_ctx_ < 4 || r->n_vocab_ == 0 || r->n_chunks_ < 0) return Status::errorf("%s: corrupt header", path.c_str());
  std::fseek(r->file_, 0, SEEK_END);
  const uint64_t file_size = static_cast<uint64_t>(std::ftell(r->file_));
  const uint64_t header_size = sizeof(kMagic) + kHeaderWords * sizeof(uint32_t);
  const uint64_t tokens_bytes = n_tokens * sizeof(int32_t);
  if (tokens_bytes > file_size - header_size) {
    return Status::errorf("%s: truncated (token list of %llu tokens)", path.c_str(),
                          static_cast<unsigned long long>(n_tokens));
  }
  r->tokens_.resize(n_tokens);
  std::fseek(r->file_, static_cast<long>(header_size), SEEK_SET);
  if (std::fread(r->tokens_.data(), sizeof(int32_t), n_tokens, r->file_) != n_tokens) {
    return Status::errorf("%s: read failed", path.c_str());
  }
  r->rows_offset_ = header_size + tokens_bytes;
  const uint64_t per_chunk = static_cast<uint64_t>(r->n_ctx_ - 1 - r->n_ctx_ / 2);
  r->n_rows_ = static_cast<int64_t>(per_chunk * static_cast<uint64_t>(r->n_chunks_));
  const uint64_t need = static_cast<uint64_t>(r->n_rows_) * row_bytes(r->n_vocab_);
  if (need != file_size - r->rows_offset_) {
    return Status::errorf("%s: expected %llu bytes of rows for %d chunks, found %llu (truncated or corrupt)",
                          path.c_str(), static_cast<unsigned long long>(need), r->n_chunks_,
                          static_cast<unsigned long long>(file_size - r->rows_offset_));
  }
  r->row_.resize(static_cast<size_t>(r->n_vocab_));
  return r;
}

KldBaseReader::~KldBaseReader() {
  if (file_ != nullptr) std::fclose(file_);
}

Status KldBaseReader::read_row(int64_t index, std::vector<double>* logprobs) const {
  if (index < 0 || index >= n_rows_) {
    return Status::errorf("%s: row %lld out of range (%lld rows)", path_.c_str(), static_cast<long long>(index),
                          static_cast<long long>(n_rows_));
  }
  float head[2];
  const uint64_t offset = rows_offset_ + static_cast<uint64_t>(index) * row_bytes(n_vocab_);
  if (std::fseek(file_, static_cast<long>(offset), SEEK_SET) != 0 || std::fread(head, sizeof(float), 2, file_) != 2 ||
      std::fread(row_.data(), sizeof(uint16_t), row_.size(), file_) != row_.size()) {
    return Status::errorf("%s: read failed at row %lld", path_.c_str(), static_cast<long long>(index));
  }
  logprobs->resize(static_cast<size_t>(n_vocab_));
  for (int64_t i = 0; i < n_vocab_; ++i) {
    (*logprobs)[static_cast<size_t>(i)] = decode_value(head[0], head[1], row_[static_cast<size_t>(i)]);
  }
  return Status();
}

void KldStats::add(const double* base_logprobs, const double* logprobs, int64_t n_vocab, int32_t next_token) {
  double sum = 0.0;
  int64_t top_base = 0;
  int64_t top = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const double pb = std::exp(base_logprobs[i]);
    sum += pb * (base_logprobs[i] - logprobs[i]);
    if (base_logprobs[i] > base_logprobs[top_base]) top_base = i;
    if (logprobs[i] > logprobs[top]) top = i;
  }
  kld.push_back(sum);
  const double nll = -logprobs[next_token];
  const double nll_base = -base_logprobs[next_token];
  sum_nll += nll;
  sum_nll2 += nll * nll;
  sum_nll_base += nll_base;
  sum_nll_base2 += nll_base * nll_base;
  sum_nll_cross += nll * nll_base;
  dp.push_back(std::exp(-nll) - std::exp(-nll_base));
  if (top == top_base) ++same_top;
  ++count;
}

KldStats::Summary KldStats::summarize() const {
  Summary s{};
  if (count == 0) return s;
  const auto n = static_cast<double>(count);
  double sum_kld = 0, sum_kld2 = 0;
  for (double k : kld) {
    sum_kld += k;
    sum_kld2 += k * k;
  }
  std::tie(s.mean_kld, s.mean_kld_err) = mean_and_error(sum_kld, sum_kld2, count);
  std::vector<double> sorted = kld;
  std::sort(sorted.begin(), sorted.end());
  s.min_kld = sorted.front();
  s.max_kld = sorted.back();
  s.median_kld = percentile(sorted, 0.5);
  s.kld_999 = percentile(sorted, 0.999);
  s.kld_99 = percentile(sorted, 0.99);
  s.kld_90 = percentile(sorted, 0.90);
  s.kld_10 = percentile(sorted, 0.10);
  s.kld_5 = percentile(sorted, 0.05);
  s.kld_1 = percentile(sorted, 0.01);

  const auto [ln_ppl, ln_ppl_err] = mean_and_error(sum_nll, sum_nll2, count);
  const auto [ln_ppl_base, ln_ppl_base_err] = mean_and_error(sum_nll_base, sum_nll_base2, count);
  const double cov = (sum_nll_cross / n - ln_ppl * ln_ppl_base) / (n - 1);
  s.ppl = std::exp(ln_ppl);
  s.ppl_base = std::exp(ln_ppl_base);
  s.mean_ln_ppl_ratio = ln_ppl - ln_ppl_base;
  const double ratio_var = ln_ppl_err * ln_ppl_err + ln_ppl_base_err * ln_ppl_base_err - 2.0 * cov;
  s.mean_ln_ppl_ratio_err = ratio_var > 0 ? std::sqrt(ratio_var) : 0.0;
  s.cor_ln_ppl = ln_ppl_err > 0 && ln_ppl_base_err > 0 ? cov / (ln_ppl_err * ln_ppl_base_err) : 1.0;

  double sum_dp = 0, sum_dp2 = 0, sum_dp4 = 0;
  for (double d : dp) {
    sum_dp += d;
    sum_dp2 += d * d;
    sum_dp4 += d * d * d * d;
  }
  s.mean_dp_pct = 100.0 * sum_dp / n;
  const auto [mse, mse_err] = mean_and_error(sum_dp2, sum_dp4, count);
  s.rms_dp_pct = 100.0 * std::sqrt(mse);
  s.rms_dp_err = mse > 0 ? 100.0 * 0.5 * mse_err / std::sqrt(mse) : 0.0;

  const double same = static_cast<double>(same_top) / n;
  s.same_top_pct = 100.0 * same;
  s.same_top_err = 100.0 * std::sqrt(same * (1.0 - same) / (n - 1));
  return s;
}

}  // namespace plumb
