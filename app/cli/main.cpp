// layerlab-cli: the headless front end of LayerLab.
#include "args.h"
#include "commands.h"
#include "export/gguf_export.h"
#include "export/gguf_presets.h"
#include "methods/method_registry.h"

#include "util/error.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>

namespace {

const char* kUsage = R"(usage: layerlab-cli <command> [options]

commands:
  inspect MODEL [--json] [--tensor NAME] [--sigma K] [--bins N]
      list a model's tensors, or the statistics of one tensor
  bench open|stats [--size-gb G] [--dir DIR]
      measure model opening and statistics throughput
  bench-model MODEL [--recipe R.yaml [--calib FILE]] [--prompt 512] [--decode 128] [--decode-after 128] [--repeats 3]
              [--threads N] [--report OUT.h5 [--force]] [--json]
      efficiency in one run: prefill (pp) and decode (tg, after a prompt) tokens/s as llama-bench measures them,
      weights and bits per weight, compression ratio, KV cache per 1k tokens, FLOPs per token, peak RSS,
      RssAnon and the bytes mapped in 2 MiB pages; with --recipe the original and the compressed model
      alternating, a smaller but slower one flagged; --report: the HDF5 report with these under /efficiency
  tokenize MODEL (--text FILE | --prompt TEXT) [--json] [--no-bos] [--pieces]
      token ids of a text with the model's own tokenizer (BOS added as the model does)
  logits MODEL --ids IDS.safetensors --out OUT.safetensors
      the logits (tokens x vocab, F32) of the int64 `input_ids` of IDS
  ppl MODEL --text FILE [--ctx N] [--windows N | --tokens N] [--protocol full|llamacpp] [--json] [--progress]
      perplexity ± its standard error on a text file (non-overlapping windows; llamacpp scores
      second halves); --windows (alias --max-windows) or --tokens: only the first windows of the text;
      progress with the time left on a terminal (--progress: also when stderr is not one)
  eval MODEL --tasks NAME=FILE[,NAME=FILE|DEF.yaml...] [--shots K] [--limit N] [--seed S] [--recipe R.yaml [--calib FILE]]
        [--no-bos] [--alone] [--per-item] [--json] [--formats]
      task accuracy as lm-evaluation-harness scores it (acc, acc_norm, mc2, LAMBADA's perplexity ± stderr);
      NAME: hellaswag, arc, mmlu, piqa, winogrande, boolq, truthfulqa_mc1, truthfulqa_mc2, lambada, mc,
      and generation tasks gsm8k, generate, refusal ([--max-tokens N] [--refusal-phrases FILE])
      (--formats lists each one's fields), or a task definition .yaml (docs/evaluation.md); with --recipe,
      the original and the compressed model side by side; the choices of an item share their prefix's pass;
      --recipes R1,R2,... --text FILE [--report OUT.h5]: perplexity as a proxy (Spearman, Kendall over the models);
      several MODELs: accuracy against the weights' size, with each task's Pareto front
  generate MODEL --prompt TEXT [-n N] [--temp T] [--top-p P] [--seed S]
      continue a prompt (greedy unless --temp > 0)
  (logits, ppl, generate also take --threads N; default: every core)
  export MODEL [--recipe R.yaml [--calib FILE]] (--gguf OUT.gguf [--gguf-type Q4_K_M|Q8_0|F16|... [--gguf-pure] [--imatrix F.dat]]
         | --hf DIR [--dtype f16|bf16|f32] [--shard-mb N]) [--report OUT.h5 [--eval FILE [--ctx N]]] [--force] [--json]
      write the model as GGUF (llama family) or a Hugging Face folder, and/or an HDF5 report
      (statistics, histograms, sparsity masks, perplexity; docs/report-schema.md); never overwrites without --force
      --gguf-type: a llama-quantize preset, each tensor's type chosen as llama-quantize does (no imatrix):
      {gguf-presets};
      or one type for every 2-D weight: {gguf-types} (default F16);
      --gguf-pure: a preset's base type for every 2-D weight (llama-quantize --pure)
      --imatrix: round each quantized tensor with llama.cpp's importance matrix (llama-quantize --imatrix)
  imatrix MODEL --text FILE --out OUT.dat [--ctx 512] [--chunks N] [--force] [--json]
      llama.cpp's importance matrix (mean x² of each block linear's input columns) in llama-imatrix's file
      format, for `export --imatrix` or llama-quantize --imatrix
  prune MODEL --method M (--sparsity S | --nm 2:4) [--structured neurons|heads --ratio R]
        [--layers REGEX] [--calib FILE [--calib-ctx 256 --calib-windows 64]] [--eval FILE [--ctx 256]] [--out DIR | --gguf OUT.gguf] [--json]
      prune every linear inside the blocks (or remove MLP neurons); evaluate and export the result
  factorize MODEL --method M (--rank-ratio F | --energy E) [--layers REGEX] [--calib FILE]
        [--eval FILE] [--out DIR | --gguf OUT.gguf] [--json]
      replace the linears by low-rank approximations (stored as the product); evaluate and export
  quantize MODEL --method M [--bits B] [--group G]
        [--sym] [--act-order] [--type Q4_K] [--layers REGEX] [--calib FILE] [--eval FILE] [--out DIR | --gguf OUT.gguf [--gguf-type T]] [--json]
      quantize the linears inside the blocks (kept packed); bits per weight, errors, evaluate and export
  apply (RECIPE MODEL | --session FILE.layerlab) [--calib FILE|builtin] [--eval FILE] [--out DIR | --gguf OUT.gguf] [--json]
      replay a recipe (YAML or JSON, docs/recipes.md) as the GUI applies it, or a GUI session's recipe on
      its model; evaluate and export
  sensitivity MODEL [--action quantize|prune|factorize] --method M [its options] --eval FILE [--ctx 128]
        [--windows 8] [--layers REGEX] [--calib FILE|builtin] [--metric dppl|dnll|kl|top1] [--no-kl] [--json]
      compress each block linear alone; rank the layers by the damage (dPPL, KL, top-1 vs the original)
  mixed MODEL --candidates "rtn:2:32,rtn:3:32,rtn:4:32,rtn:8:32" (--budget-bits B | --budget-bytes N) --eval FILE
        [--ctx 128] [--windows 8] [--metric kl|dnll|dppl|top1] [--solver exact|greedy] [--save-recipe R.yaml]
        [--no-measure] [--json]
      one config per layer under a size budget, from per-layer sensitivities; a replayable recipe
  session check FILE.layerlab [--replay] [--json]
      open a GUI session headless: its model, each step's options and layers; --replay applies the recipe
  methods [--markdown]
      every compression method (quantize, prune, factorize) with its options, ranges and defaults
  clean [FOLDER...] [--remove]
      list (or remove) the partial files that killed exports left (the next export to the same name removes its own)

MODEL is a Hugging Face folder, a .safetensors file, a .gguf file or a llama2.c .bin.
`layerlab-cli quantize --help` (prune, factorize) lists the methods M and each one's options.
Exit codes: 0 success, 2 bad input (the message names the file), 64 usage error.
)";

// The usage text with the lists that come from core's tables filled in (the
// GGUF presets and types), so that a new type or preset needs no edit here.
std::string usage()
{
    std::string text = kUsage;
    std::string presets;
    for (const ll::GgufPresetInfo& p : ll::ggufPresets())
        presets += (presets.empty() ? std::string() : ", ") + p.name + (p.preset == ll::GgufPreset::Q4_K_M ? " (recommended)" : "");
    const auto fill = [&](const std::string& key, const std::string& value) {
        if (const size_t at = text.find(key); at != std::string::npos)
            text.replace(at, key.size(), value);
    };
    fill("{gguf-presets}", presets);
    fill("{gguf-types}", ll::ggufExportTypeNames());
    return text;
}

// The usage lines of one command: from "  NAME ..." to the next command's line.
std::string commandUsage(const std::string& name)
{
    const std::string all = usage();
    std::string out;
    bool in = false;
    size_t pos = 0;
    while (pos < all.size()) {
        const size_t end = all.find('\n', pos);
        const std::string line = all.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        pos = end == std::string::npos ? all.size() : end + 1;
        const bool commandLine = line.size() > 2 && line.compare(0, 2, "  ") == 0 && std::isalpha(static_cast<unsigned char>(line[2]));
        if (line.empty())
            in = false;
        if (commandLine)
            in = line.compare(2, name.size() + 1, name + " ") == 0 || line.substr(2) == name;
        if (in)
            out += line + "\n";
    }
    return out;
}

} // namespace

int main(int argc, char** argv)
{
    using namespace ll::cli;
    const std::map<std::string, std::function<int(const std::vector<std::string>&)>> commands{
        {"inspect", cmdInspect},
        {"bench", cmdBench},
        {"bench-model", cmdBenchModel},
        {"tokenize", cmdTokenize},
        {"logits", cmdLogits},
        {"ppl", cmdPpl},
        {"eval", cmdEval},
        {"imatrix", cmdImatrix},
        {"generate", cmdGenerate},
        {"export", cmdExport},
        {"prune", cmdPrune},
        {"factorize", cmdFactorize},
        {"quantize", cmdQuantize},
        {"apply", cmdApply},
        {"sensitivity", cmdSensitivity},
        {"mixed", cmdMixed},
        {"clean", cmdClean},
        {"session", cmdSession},
        {"methods", cmdMethods},
    };
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
        return argc < 2 ? 64 : 0;
    }
    const std::string name = argv[1];
    if (name == "--version") {
        std::printf("layerlab-cli %s\n", LAYERLAB_VERSION);
        return 0;
    }
    auto it = commands.find(name);
    if (it == commands.end()) {
        std::fprintf(stderr, "layerlab-cli: unknown command '%s'\n\n%s", name.c_str(), usage().c_str());
        return 64;
    }
    const std::vector<std::string> rest(argv + 2, argv + argc);
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end() || std::find(rest.begin(), rest.end(), "-h") != rest.end()) {
        std::printf("usage: layerlab-cli %s", commandUsage(name).substr(2).c_str());
        // The methods and their parameters, from the registry.
        if (name == "quantize" || name == "sensitivity")
            std::printf("\n%s", ll::methodHelp(ll::StepAction::Quantize).c_str());
        if (name == "prune" || name == "sensitivity")
            std::printf("\n%s", ll::methodHelp(ll::StepAction::Prune).c_str());
        if (name == "factorize" || name == "sensitivity")
            std::printf("\n%s", ll::methodHelp(ll::StepAction::Factorize).c_str());
        return 0;
    }
    try {
        return it->second(rest);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "layerlab-cli %s: %s\n", name.c_str(), oneLine(e.what()).c_str());
        return 64;
    } catch (const ll::Error& e) {
        std::fprintf(stderr, "error: %s\n", oneLine(e.what()).c_str());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", oneLine(e.what()).c_str());
        return 2;
    }
}
