#pragma once
// The HDF5 report: one file that holds what LayerLab knows about a model and
// what was done to it (statistics and histograms of every tensor, masks of the
// pruned ones, error curves, perplexity, the recipe, a sensitivity table), for
// reading in Python (h5py) or any HDF5 tool. docs/report-schema.md is the schema.
//
// Written atomically (a partial file beside the final name, renamed when
// complete); cancellable through Progress; every failure is an ll::Error naming
// the final file.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ll {

class Model;
class Progress;

// One error curve of one layer: weight and output error as a function of a
// method's knob (bits, sparsity, rank ratio...).
struct ReportErrorCurve {
    std::string layer;                 // logical name ("blocks.0.attn.q.weight"); must exist in the model
    std::string method;                // "rtn", "gptq", "magnitude"... (names the curve's group)
    std::string xLabel;                // what x is: "bits", "sparsity", "rank_ratio"
    std::vector<double> x;
    std::vector<double> weightError;   // ||W - W^||_F / ||W||_F, one per x
    std::vector<double> outputError;   // ||X (W - W^)^T||_F / ||X W^T||_F, one per x; empty when unknown
};

// One row of a sensitivity table: what compressing one layer alone costs.
struct ReportSensitivityRow {
    std::string layer;                 // logical name
    std::string method;                // "rtn 3-bit", "magnitude 50%"...
    std::optional<double> deltaPpl;    // ppl(compressed) - ppl(original)
    std::optional<double> kl;          // mean KL(original || compressed), nats
};

struct ReportOptions {
    int bins = 128;                    // histogram bins per tensor
    double outlierSigma = 3.0;         // |x - mean| > k * std counts as an outlier
    // A bit-packed mask of the nonzeros is written for an edited tensor that
    // holds any zero, and for any other matrix whose share of exact zeros is at
    // least this (trained weights have almost none; pruned ones have many;
    // all-zero biases, as GPT-2's, are not worth a mask).
    double maskMinSparsity = 0.10;
    bool overwrite = false;            // replace an existing file at the final name
};

struct ReportInputs {
    const Model* model = nullptr;                    // required
    std::optional<nlohmann::json> recipe;            // the recipe document; nullopt / null: no /recipe
    std::optional<nlohmann::json> evaluation;        // perplexity results (an object); nullopt: no /evaluation
    std::vector<ReportErrorCurve> errorCurves;
    std::vector<ReportSensitivityRow> sensitivity;   // empty: no /sensitivity
    std::optional<nlohmann::json> tasks;             // task results over configurations (tasks/proxy.h's proxyJson); nullopt: no /tasks
    std::optional<nlohmann::json> efficiency;        // speed and memory (bench-model's JSON); nullopt: no /efficiency
    ReportOptions options;
};

struct ReportResult {
    std::string path;
    uint64_t bytes = 0;
    int64_t tensors = 0;        // groups under /layers
    int64_t undecodable = 0;    // tensors whose stored type LayerLab cannot decode (no statistics)
    int64_t masks = 0;          // tensors with a sparsity mask
    std::string headerHash;     // /model header_hash
    double seconds = 0.0;

    nlohmann::json toJson() const;
};

// The schema version written as the root attribute `schema_version`.
constexpr int kReportSchemaVersion = 1;

// Writes the report to `path`. Throws InvalidArgument (no model, an error curve
// naming an unknown layer or with mismatched lengths, `path` exists without
// overwrite), NotFound / Io (the folder is missing or unwritable, HDF5 failed,
// the disk is full), Cancelled. Nothing is left under `path` on failure.
ReportResult writeReport(const std::string& path, const ReportInputs& inputs, Progress* progress = nullptr);

// FNV-1a 64 over the first min(size, headerHashBytes) bytes of each of the
// model's files, fed in order into one hash; lower-case hex (16 digits).
constexpr uint64_t kHeaderHashBytes = 1 << 20;
std::string modelHeaderHash(const Model& model);

} // namespace ll
