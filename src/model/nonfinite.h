// NaN is never an answer: when a forward pass gives logits that are not finite, the batch is
// run again with a tracer that stops at the first tap holding NaN or infinity, and the error
// names it ("first non-finite values at blk.2.attn_q ..."), the way plumb diff names the first
// divergent op.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "model/model.h"
#include "util/status.h"

namespace plumb::trace {

// Index of the first element of x[0..n) that is NaN or infinite; -1 when all are finite.
int64_t first_nonfinite(const float* x, int64_t n);

// The error for non-finite logits after `session` evaluated `tokens` from position 0: the
// session is emptied and the tokens decoded again through a tracer that finds the first tap
// (in forward order) with a non-finite value. The session is left holding `tokens`.
// `what` says where the logits were met ("generating token 5", "chunk 3").
Status explain_nonfinite_logits(Session& session, std::span<const int32_t> tokens, const std::string& what);

}  // namespace plumb::trace
