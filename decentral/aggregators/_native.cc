// CPU kernels for the distance passes of the aggregation rules (XLA FFI custom calls),
// compiled on first use by decentral/aggregators/_native.py, which documents them.
//
// XLA on CPU emits reductions over the long last axis of a fused computation as scalar
// code, keeps the pair loop of a pairwise-distance pass outermost (each pair streams its
// two rows from L2), and runs each step of an iterative rule as separate passes over all
// inboxes. These kernels take one inbox at a time (it stays in L2), in column blocks that
// stay in L1, sum each output in 64 independent float lanes (four 512-bit vectors)
// within a block and in double across blocks, run each step of an iterative rule in one
// pass over the cached inbox, and share the inboxes among the threads of XLA's CPU pool. Each output depends only on the rows it is about, never on their
// position in the inbox.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kBlock = 512;  // columns per block: 16 rows x 2 KB stay in L1

// A vector of 16 floats (one AVX-512 register, two AVX ones), loaded and stored unaligned
// through a pointer to an under-aligned copy of the type: GCC 12 turns a 64-byte
// __builtin_memcpy into a round trip through the stack, which stalled store-to-load
// forwarding and ran the distance kernels at a tenth of their speed.
typedef float Vector __attribute__((vector_size(64), aligned(4)));
typedef float Unaligned __attribute__((vector_size(64), aligned(4), may_alias));
constexpr int kLanes = 16;

inline Vector load(const float* p) { return *reinterpret_cast<const Unaligned*>(p); }

inline void store(float* p, Vector v) { *reinterpret_cast<Unaligned*>(p) = v; }

inline float lanes_sum(Vector v) {
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

// sum_c (a[c] - b[c])^2 over one block of columns: four independent accumulators, so
// consecutive fused multiply-adds do not wait for each other.
inline float block_squares(const float* a, const float* b, int64_t width) {
  Vector s0 = {}, s1 = {}, s2 = {}, s3 = {};
  int64_t c = 0;
  for (; c + 4 * kLanes <= width; c += 4 * kLanes) {
    Vector t0 = load(a + c) - load(b + c), t1 = load(a + c + kLanes) - load(b + c + kLanes);
    Vector t2 = load(a + c + 2 * kLanes) - load(b + c + 2 * kLanes);
    Vector t3 = load(a + c + 3 * kLanes) - load(b + c + 3 * kLanes);
    s0 += t0 * t0; s1 += t1 * t1; s2 += t2 * t2; s3 += t3 * t3;
  }
  for (; c + kLanes <= width; c += kLanes) {
    Vector t = load(a + c) - load(b + c);
    s0 += t * t;
  }
  float s = lanes_sum((s0 + s1) + (s2 + s3));
  for (; c < width; ++c) s += (a[c] - b[c]) * (a[c] - b[c]);
  return s;
}

// sum_c a[c] * b[c] over one block of columns.
inline float block_dot(const float* a, const float* b, int64_t width) {
  Vector s0 = {}, s1 = {}, s2 = {}, s3 = {};
  int64_t c = 0;
  for (; c + 4 * kLanes <= width; c += 4 * kLanes) {
    s0 += load(a + c) * load(b + c);
    s1 += load(a + c + kLanes) * load(b + c + kLanes);
    s2 += load(a + c + 2 * kLanes) * load(b + c + 2 * kLanes);
    s3 += load(a + c + 3 * kLanes) * load(b + c + 3 * kLanes);
  }
  for (; c + kLanes <= width; c += kLanes) s0 += load(a + c) * load(b + c);
  float s = lanes_sum((s0 + s1) + (s2 + s3));
  for (; c < width; ++c) s += a[c] * b[c];
  return s;
}

// Squared distances of the pairs i < j of one inbox x [rows, dim] (row-major order of
// the upper triangle), and the projections x_k . direction.
void inbox_pairs(const float* x, int64_t rows, int64_t dim, const float* direction,
                 float* pair_sums, float* projections) {
  const int64_t pairs = rows * (rows - 1) / 2;
  std::vector<double> totals(pairs + rows, 0.0);
  double* pair_totals = totals.data();
  double* projection_totals = pair_totals + pairs;
  for (int64_t start = 0; start < dim; start += kBlock) {
    const int64_t width = std::min(kBlock, dim - start);
    int64_t p = 0;
    for (int64_t i = 0; i < rows; ++i) {
      const float* xi = x + i * dim + start;
      for (int64_t j = i + 1; j < rows; ++j, ++p) {
        pair_totals[p] += block_squares(xi, x + j * dim + start, width);
      }
      projection_totals[i] += block_dot(xi, direction + start, width);
    }
  }
  for (int64_t p = 0; p < pairs; ++p) pair_sums[p] = static_cast<float>(pair_totals[p]);
  for (int64_t i = 0; i < rows; ++i) projections[i] = static_cast<float>(projection_totals[i]);
}

// sum_c (x_k[c] - center[c])^2 for each row k of one inbox x [rows, dim], into `squares`;
// and, when `direction` is given, x_k . direction into `projections`.
void inbox_to_center(const float* x, int64_t rows, int64_t dim, const float* center,
                     const float* direction, double* squares, double* projections) {
  std::fill(squares, squares + rows, 0.0);
  if (direction) std::fill(projections, projections + rows, 0.0);
  for (int64_t start = 0; start < dim; start += kBlock) {
    const int64_t width = std::min(kBlock, dim - start);
    for (int64_t i = 0; i < rows; ++i) {
      const float* xi = x + i * dim + start;
      squares[i] += block_squares(xi, center + start, width);
      if (direction) projections[i] += block_dot(xi, direction + start, width);
    }
  }
}

// The rows whose coefficient is not 0, in row order or in `order` (a permutation).
std::vector<int64_t> used_rows(const float* coefficients, int64_t rows, const int64_t* order) {
  std::vector<int64_t> used;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t k = order ? order[i] : i;
    if (coefficients[k] != 0.0f) used.push_back(k);
  }
  return used;
}

// out[c] = base[c] + sum_k coefficients[k] * (x_k[c] - offset[c]) over the `used` rows
// (the others, possibly NaN or inf, are skipped), summed in that order; kOffset false:
// no offset, base 0. Columns [0, width) of rows `stride` apart; out may alias offset or
// base. `upcoming`, if given, is the next inbox this thread will read (same layout): it
// is prefetched meanwhile, so that its first pass finds it in cache.
template <bool kOffset>
void combine_rows(const float* x, const std::vector<int64_t>& used, int64_t rows, int64_t stride,
                  int64_t width, const float* coefficients, const float* offset,
                  const float* base, float* out, const float* upcoming) {
  int64_t c = 0;
  for (; c + 4 * kLanes <= width; c += 4 * kLanes) {  // four independent sums
    Vector s[4] = {}, shift[4] = {};
    if (kOffset)
      for (int v = 0; v < 4; ++v) shift[v] = load(offset + c + v * kLanes);
    if (upcoming)
      for (int64_t k = 0; k < rows; ++k)
        for (int v = 0; v < 4; ++v) __builtin_prefetch(upcoming + k * stride + c + v * kLanes);
    for (int64_t k : used) {
      const float* row = x + k * stride + c;
      for (int v = 0; v < 4; ++v)
        s[v] += coefficients[k] * (kOffset ? load(row + v * kLanes) - shift[v] : load(row + v * kLanes));
    }
    for (int v = 0; v < 4; ++v) {
      const Vector result = kOffset ? load(base + c + v * kLanes) + s[v] : s[v];
      store(out + c + v * kLanes, result);
    }
  }
  for (; c < width; ++c) {
    float s = 0.0f;
    for (int64_t k : used) s += coefficients[k] * (x[k * stride + c] - (kOffset ? offset[c] : 0.0f));
    out[c] = (kOffset ? base[c] : 0.0f) + s;
  }
}

// A new centre and every row's squared distance to it, in one pass over the inbox:
//   out = (base + sum_k coefficients[k] (x_k - offset)) / divisor  (combine_rows)
//   squares[k] = sum_c (x_k[c] - out[c])^2
// A column of the centre depends only on the same column of the rows, so each block of
// columns is combined, then compared with every row while it is still in L1. With
// `squares` null, the centre only; offset and base are both given or both null. out may
// alias offset or base.
void center_and_distances(const float* x, int64_t rows, int64_t dim, const float* coefficients,
                          const float* offset, const float* base, float divisor, float* out,
                          const int64_t* order, const float* upcoming, double* squares) {
  if (squares) std::fill(squares, squares + rows, 0.0);
  const std::vector<int64_t> used = used_rows(coefficients, rows, order);
  for (int64_t start = 0; start < dim; start += kBlock) {
    const int64_t width = std::min(kBlock, dim - start);
    float* block = out + start;
    const float* prefetched = upcoming ? upcoming + start : nullptr;
    if (offset) {
      combine_rows<true>(x + start, used, rows, dim, width, coefficients, offset + start,
                         base + start, block, prefetched);
    } else {
      combine_rows<false>(x + start, used, rows, dim, width, coefficients, nullptr, nullptr,
                          block, prefetched);
    }
    if (divisor != 1.0f)
      for (int64_t c = 0; c < width; ++c) block[c] /= divisor;
    if (squares)
      for (int64_t k = 0; k < rows; ++k) squares[k] += block_squares(x + k * dim + start, block, width);
  }
}

// out = sum_k coefficients[k] x_k / sum_k coefficients[k] (0 where that sum is 0), both
// sums in row order or in `order`, and (unless `squares` is null) every row's squared
// distance to it: center_and_distances for a weighted mean.
void weighted_mean(const float* x, int64_t rows, int64_t dim, const float* coefficients,
                   const int64_t* order, float* out, const float* upcoming, double* squares) {
  float total = 0.0f;
  for (int64_t i = 0; i < rows; ++i) total += coefficients[order ? order[i] : i];
  center_and_distances(x, rows, dim, coefficients, nullptr, nullptr, total > 0.0f ? total : 1.0f,
                       out, order, upcoming, squares);
}

enum Reweighting : int64_t { kClipping = 0, kWeiszfeld = 1 };

// `iterations` steps of an iterative rule on one inbox x [rows, dim] with mixing weights
// (0 for masked rows), from `start`; the result in `z` [dim]. Per step, with d_k the
// distance of row k to z (rows at a non-finite distance get coefficient 0):
//   kClipping (centered clipping, radius = parameter):
//     z <- z + sum_k w_k min(1, radius / d_k) (x_k - z)
//   kWeiszfeld (smoothed Weiszfeld, smoothing = parameter):
//     z <- sum_k b_k x_k / sum_k b_k,  b_k = w_k / max(smoothing, d_k)  (0 if the sum is 0)
// One pass over the inbox per step (center_and_distances), and one for the first
// distances.
void reweighted(const float* x, int64_t rows, int64_t dim, const float* weights,
                const float* start, float parameter, int64_t iterations, int64_t kind,
                float* z, const float* upcoming) {
  std::copy(start, start + dim, z);
  std::vector<double> squares(rows);
  std::vector<float> coefficients(rows);
  inbox_to_center(x, rows, dim, z, nullptr, squares.data(), nullptr);
  for (int64_t step = 0; step < iterations; ++step) {
    for (int64_t k = 0; k < rows; ++k) {
      const float distance = std::sqrt(static_cast<float>(squares[k]));
      float coefficient = 0.0f;
      if (std::isfinite(distance) && weights[k] != 0.0f) {
        if (kind == kClipping) {
          coefficient = weights[k] * (distance > parameter ? parameter / distance : 1.0f);
        } else {
          coefficient = weights[k] / std::max(parameter, distance);
        }
      }
      coefficients[k] = coefficient;
    }
    const float* prefetched = step == 0 ? upcoming : nullptr;  // the most time to arrive
    double* next_squares = step + 1 < iterations ? squares.data() : nullptr;
    if (kind == kClipping) {
      center_and_distances(x, rows, dim, coefficients.data(), z, z, 1.0f, z, nullptr, prefetched,
                           next_squares);
    } else {
      weighted_mean(x, rows, dim, coefficients.data(), nullptr, z, prefetched, next_squares);
    }
  }
}

// The iterative outlier scissor (IOS) on one inbox x [rows, dim], into `out` [dim]: f
// times, drop the trusted row (other than row 0) farthest from the weighted mean of the
// trusted finite rows, then average the rows left. Ties: the larger tie key
// (x_k . direction), then the larger weight, then the lower index goes first. A row is
// finite when its distance to row 0 is; the others are infinitely far from any centre.
// Means are summed in the order of (tie key, weight): a centre, hence every distance
// and every choice, is then bit for bit the same whatever the order of the inbox (in
// row order, an exact tie of distances was decided by rounding).
void outlier_scissor(const float* x, int64_t rows, int64_t dim, const float* weights,
                     const bool* mask, int64_t f, const float* direction, float* out,
                     const float* upcoming) {
  std::vector<double> squares(rows), projections(rows);
  inbox_to_center(x, rows, dim, x, direction, squares.data(), projections.data());
  std::vector<float> keys(rows), coefficients(rows);
  std::vector<char> finite(rows), trusted(rows);
  for (int64_t k = 0; k < rows; ++k) {
    const float projection = static_cast<float>(projections[k]);
    keys[k] = std::isfinite(projection) ? projection : 0.0f;
    finite[k] = std::isfinite(std::sqrt(static_cast<float>(squares[k])));
    trusted[k] = mask[k];
  }
  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  auto lighter = [](float a, float b) { return a < b || (std::isnan(b) && !std::isnan(a)); };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {  // keys are finite
    return keys[a] < keys[b] || (keys[a] == keys[b] && lighter(weights[a], weights[b]));
  });
  // The weighted mean of the trusted finite rows, and (unless `last`) every row's squared
  // distance to it. Returns whether every trusted row is finite.
  auto center_of_trusted = [&](bool first, bool last) {
    bool trusted_are_finite = true;
    for (int64_t k = 0; k < rows; ++k) {
      coefficients[k] = trusted[k] && finite[k] ? weights[k] : 0.0f;
      trusted_are_finite = trusted_are_finite && (finite[k] || !trusted[k]);
    }
    weighted_mean(x, rows, dim, coefficients.data(), order.data(), out,
                  first ? upcoming : nullptr,  // the most time to arrive
                  last ? nullptr : squares.data());
    return trusted_are_finite;
  };
  bool trusted_are_finite = center_of_trusted(true, f == 0);
  for (int64_t step = 0; step < f; ++step) {
    int64_t farthest = -1;
    float farthest_distance = 0.0f;
    for (int64_t k = 1; k < rows; ++k) {
      if (!trusted[k]) continue;
      const float distance =
          finite[k] ? std::sqrt(static_cast<float>(squares[k])) : std::numeric_limits<float>::infinity();
      const bool first = farthest < 0 || distance > farthest_distance ||
                         (distance == farthest_distance &&
                          (keys[k] > keys[farthest] ||
                           (keys[k] == keys[farthest] && weights[k] > weights[farthest])));
      if (first) {
        farthest = k;
        farthest_distance = distance;
      }
    }
    if (farthest < 0) break;
    trusted[farthest] = false;
    trusted_are_finite = center_of_trusted(false, step + 1 == f);
  }
  if (trusted_are_finite) return;  // the same coefficients, the same sum
  for (int64_t k = 0; k < rows; ++k) coefficients[k] = trusted[k] ? weights[k] : 0.0f;
  weighted_mean(x, rows, dim, coefficients.data(), order.data(), out, nullptr, nullptr);
}

// Runs body(b, next) for b in [0, count) on the XLA thread pool and the calling thread,
// in chunks of consecutive b; `next` is the b the same thread runs after this one (-1 at
// the end of a chunk), for prefetching. The caller takes work too and waits only for
// work that has started, so tasks the pool runs late (or never, when all its threads
// are busy) cannot deadlock it.
template <typename Body>
void parallel_for(ffi::ThreadPool& pool, int64_t count, Body body) {
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> finished{0};
    std::mutex mutex;
    std::condition_variable all_done;
  };
  const int64_t threads = std::max<int64_t>(pool.num_threads(), 1);
  const int64_t size = std::max<int64_t>(1, count / (8 * threads));
  const int64_t chunks = (count + size - 1) / size;
  auto state = std::make_shared<State>();
  auto work = [state, count, size, chunks, body]() {
    int64_t chunk;
    while ((chunk = state->next.fetch_add(1)) < chunks) {
      const int64_t end = std::min(count, (chunk + 1) * size);
      for (int64_t b = chunk * size; b < end; ++b) body(b, b + 1 < end ? b + 1 : -1);
      if (state->finished.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(state->mutex);
        state->all_done.notify_all();
      }
    }
  };
  const int64_t helpers = std::min(threads, chunks) - 1;
  for (int64_t t = 0; t < helpers; ++t) {
    auto task = work;
    pool.Schedule(std::move(task));
  }
  work();
  std::unique_lock<std::mutex> lock(state->mutex);
  state->all_done.wait(lock, [&] { return state->finished.load() == chunks; });
}

// The batch (leading) axes of the operands of one call: under vmap ("expand_dims") each
// operand has the same number of them, each of full size or 1 (unbatched).
struct Batches {
  std::vector<int64_t> sizes;                 // the broadcast batch shape
  std::vector<std::vector<int64_t>> operands;  // each operand's batch shape

  int64_t count() const {
    int64_t n = 1;
    for (int64_t size : sizes) n *= size;
    return n;
  }

  // Flat batch index, in operand o, of the b-th output.
  int64_t index(size_t o, int64_t b) const {
    int64_t at = 0, stride = 1;
    for (size_t a = sizes.size(); a-- > 0;) {
      const int64_t i = b % sizes[a];
      b /= sizes[a];
      if (operands[o][a] != 1) at += i * stride;
      stride *= operands[o][a];
    }
    return at;
  }
};

std::vector<int64_t> batch_shape(const ffi::AnyBuffer::Dimensions& dims, size_t trailing) {
  return std::vector<int64_t>(dims.begin(), dims.end() - std::min(trailing, dims.size()));
}

ffi::ErrorOr<Batches> broadcast(std::vector<std::vector<int64_t>> operands) {
  Batches batches{operands[0], operands};
  for (const auto& shape : operands) {
    if (shape.size() != batches.sizes.size())
      return ffi::Unexpected(ffi::Error::InvalidArgument("operands have different batch ranks"));
    for (size_t a = 0; a < shape.size(); ++a) {
      int64_t& size = batches.sizes[a];
      if (shape[a] != size && shape[a] != 1 && size != 1)
        return ffi::Unexpected(ffi::Error::InvalidArgument("operands have different batch sizes"));
      size = std::max(size, shape[a]);
    }
  }
  return batches;
}

// x [..., K, d]; shape checks shared by the handlers.
ffi::Error inbox_shape(const ffi::AnyBuffer::Dimensions& dims, int64_t& rows, int64_t& dim) {
  if (dims.size() < 2) return ffi::Error::InvalidArgument("x must be [..., K, d]");
  rows = dims[dims.size() - 2];
  dim = dims[dims.size() - 1];
  return ffi::Error::Success();
}

ffi::Error PairSumsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                        ffi::Buffer<ffi::F32> direction,
                        ffi::ResultBuffer<ffi::F32> pair_sums,
                        ffi::ResultBuffer<ffi::F32> projections) {
  int64_t rows, dim;
  if (auto error = inbox_shape(x.dimensions(), rows, dim); error.failure()) return error;
  int64_t inboxes = 1;
  for (int64_t size : batch_shape(x.dimensions(), 2)) inboxes *= size;
  const int64_t pairs = rows * (rows - 1) / 2;
  const float* data = x.typed_data();
  const float* u = direction.typed_data();
  float* sums = pair_sums->typed_data();
  float* proj = projections->typed_data();
  parallel_for(pool, inboxes, [=](int64_t b, int64_t) {
    inbox_pairs(data + b * rows * dim, rows, dim, u, sums + b * pairs, proj + b * rows);
  });
  return ffi::Error::Success();
}

// center: [..., d], or [..., 0] for row 0 of each inbox.
ffi::Error CenterSumsImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> center, ffi::Buffer<ffi::F32> direction,
                          ffi::ResultBuffer<ffi::F32> squares,
                          ffi::ResultBuffer<ffi::F32> projections) {
  int64_t rows, dim;
  if (auto error = inbox_shape(x.dimensions(), rows, dim); error.failure()) return error;
  auto batches = broadcast({batch_shape(x.dimensions(), 2), batch_shape(center.dimensions(), 1)});
  if (batches.has_error()) return batches.error();
  const Batches& at = batches.value();
  const bool around_own = center.element_count() == 0;
  const float* data = x.typed_data();
  const float* c = center.typed_data();
  const float* u = direction.typed_data();
  float* sq = squares->typed_data();
  float* proj = projections->typed_data();
  parallel_for(pool, at.count(), [=, &at](int64_t b, int64_t) {
    const float* inbox = data + at.index(0, b) * rows * dim;
    const float* around = around_own ? inbox : c + at.index(1, b) * dim;
    std::vector<double> totals(2 * rows);
    inbox_to_center(inbox, rows, dim, around, u, totals.data(), totals.data() + rows);
    for (int64_t k = 0; k < rows; ++k) {
      sq[b * rows + k] = static_cast<float>(totals[k]);
      proj[b * rows + k] = static_cast<float>(totals[rows + k]);
    }
  });
  return ffi::Error::Success();
}

// weights [..., K]; start [..., d], or [..., 0] for row 0; parameter [...].
ffi::Error ReweightedImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::F32> start,
                          ffi::Buffer<ffi::F32> parameter, ffi::ResultBuffer<ffi::F32> out,
                          int64_t iterations, int64_t kind) {
  int64_t rows, dim;
  if (auto error = inbox_shape(x.dimensions(), rows, dim); error.failure()) return error;
  if (kind != kClipping && kind != kWeiszfeld)
    return ffi::Error::InvalidArgument("kind: 0 (clipping) or 1 (Weiszfeld)");
  auto batches = broadcast({batch_shape(x.dimensions(), 2), batch_shape(weights.dimensions(), 1),
                            batch_shape(start.dimensions(), 1), batch_shape(parameter.dimensions(), 0)});
  if (batches.has_error()) return batches.error();
  const Batches& at = batches.value();
  const bool from_own = start.element_count() == 0;
  const float* data = x.typed_data();
  const float* w = weights.typed_data();
  const float* s = start.typed_data();
  const float* p = parameter.typed_data();
  float* z = out->typed_data();
  parallel_for(pool, at.count(), [=, &at](int64_t b, int64_t next) {
    const float* inbox = data + at.index(0, b) * rows * dim;
    const float* from = from_own ? inbox : s + at.index(2, b) * dim;
    const float* upcoming = next < 0 ? nullptr : data + at.index(0, next) * rows * dim;
    reweighted(inbox, rows, dim, w + at.index(1, b) * rows, from, p[at.index(3, b)], iterations,
               kind, z + b * dim, upcoming);
  });
  return ffi::Error::Success();
}

// weights [..., K]; mask [..., K]; f [...]; direction [d].
ffi::Error OutlierScissorImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                              ffi::Buffer<ffi::F32> weights, ffi::Buffer<ffi::PRED> mask,
                              ffi::Buffer<ffi::S32> f, ffi::Buffer<ffi::F32> direction,
                              ffi::ResultBuffer<ffi::F32> out) {
  int64_t rows, dim;
  if (auto error = inbox_shape(x.dimensions(), rows, dim); error.failure()) return error;
  auto batches = broadcast({batch_shape(x.dimensions(), 2), batch_shape(weights.dimensions(), 1),
                            batch_shape(mask.dimensions(), 1), batch_shape(f.dimensions(), 0)});
  if (batches.has_error()) return batches.error();
  const Batches& at = batches.value();
  const float* data = x.typed_data();
  const float* w = weights.typed_data();
  const bool* valid = mask.typed_data();
  const int32_t* scissored = f.typed_data();
  const float* u = direction.typed_data();
  float* result = out->typed_data();
  parallel_for(pool, at.count(), [=, &at](int64_t b, int64_t next) {
    const float* upcoming = next < 0 ? nullptr : data + at.index(0, next) * rows * dim;
    outlier_scissor(data + at.index(0, b) * rows * dim, rows, dim, w + at.index(1, b) * rows,
                    valid + at.index(2, b) * rows, scissored[at.index(3, b)], u, result + b * dim,
                    upcoming);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DecentralPairSums, PairSumsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DecentralCenterSums, CenterSumsImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DecentralReweighted, ReweightedImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("iterations")
                                  .Attr<int64_t>("kind"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(DecentralOutlierScissor, OutlierScissorImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::PRED>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
