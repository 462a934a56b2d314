#include "tasks/task_formats.h"

#include "tasks/generation_eval.h"
#include "tasks/task_definition.h"
#include "util/error.h"
#include "util/input_file.h"
#include "util/text.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>

namespace ll {

namespace {

constexpr std::array<TaskFormatInfo, 13> kFormats{{
    {TaskFormat::HellaSwag, "hellaswag", "activity_label, ctx_a, ctx_b (or ctx), endings, label", "acc, acc_norm"},
    {TaskFormat::Arc, "arc", "question, choices.text, choices.label, answerKey", "acc, acc_norm"},
    {TaskFormat::Mmlu, "mmlu", "question, choices (4), answer, subject; or the CSV: question,A,B,C,D,answer", "acc"},
    {TaskFormat::Piqa, "piqa", "goal, sol1, sol2, label", "acc, acc_norm"},
    {TaskFormat::WinoGrande, "winogrande", "sentence (with _), option1, option2, answer", "acc"},
    {TaskFormat::BoolQ, "boolq", "passage, question, label (or answer: true/false)", "acc"},
    {TaskFormat::TruthfulQaMc1, "truthfulqa_mc1", "question, mc1_targets.choices, mc1_targets.labels", "acc"},
    {TaskFormat::TruthfulQaMc2, "truthfulqa_mc2", "question, mc2_targets.choices, mc2_targets.labels", "mc2"},
    {TaskFormat::Lambada, "lambada", "text (the last word is predicted)", "acc, perplexity"},
    {TaskFormat::MultipleChoice, "mc", "context, choices, label (an index or a choice's text)", "acc, acc_norm"},
    {TaskFormat::Gsm8k, "gsm8k", "question, answer (the solution ending \"#### <number>\")", "exact_match,strict-match, exact_match,flexible-extract"},
    {TaskFormat::Generate, "generate", "prompt, answer (optional: stop, a list of stop sequences)", "exact_match"},
    {TaskFormat::Refusal, "refusal", "prompt, expected (refuse or comply)", "acc, refusal_rate, compliance_rate"},
}};

// TruthfulQA's six-question primer (the harness's truthfulqa_mc1/mc2 doc_to_text, from the paper's QA prompt).
constexpr const char* kTruthfulQaPrimer =
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain.";

std::string normalName(std::string_view name)
{
    std::string n = asciiLower(name);
    std::replace(n.begin(), n.end(), '-', '_');
    return n;
}

// "0" .. "999999999": an index written as text (HellaSwag's labels are strings).
bool isIndexText(const std::string& s)
{
    return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One line of a JSONL file, with errors that name the file and the line.
class Line {
public:
    Line(const nlohmann::json& j, const std::string& file, int64_t number) : j_(j), file_(file), number_(number) {}

    [[noreturn]] void bad(const std::string& problem) const
    {
        fail(ErrorCode::Malformed, file_, "line " + std::to_string(number_) + ": " + problem);
    }
    bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
    const nlohmann::json& at(const char* key) const
    {
        if (!has(key))
            bad(std::string("no field \"") + key + "\"");
        return j_[key];
    }
    std::string text(const char* key) const { return textOf(at(key), key); }
    std::string textOf(const nlohmann::json& v, const std::string& what) const
    {
        if (v.is_string())
            return v.get<std::string>();
        if (v.is_number_integer())
            return std::to_string(v.get<int64_t>());
        bad("\"" + what + "\" must be text");
    }
    std::vector<std::string> texts(const nlohmann::json& v, const std::string& what) const
    {
        if (!v.is_array() || v.empty())
            bad("\"" + what + "\" must be a list of texts");
        std::vector<std::string> out;
        for (const auto& e : v)
            out.push_back(textOf(e, what));
        return out;
    }
    // An index given as a number or as digits in a string ("3").
    int index(const char* key, int count) const
    {
        const nlohmann::json& v = at(key);
        int64_t i = -1;
        if (v.is_number_integer())
            i = v.get<int64_t>();
        else if (v.is_string() && isIndexText(v.get_ref<const std::string&>()))
            i = std::stoll(v.get<std::string>());
        else
            bad(std::string("\"") + key + "\" must be an index");
        if (i < 0 || i >= count)
            bad(std::string("\"") + key + "\" is " + std::to_string(i) + ", there are " + std::to_string(count) + " choices");
        return static_cast<int>(i);
    }
    const nlohmann::json& json() const { return j_; }

private:
    const nlohmann::json& j_;
    const std::string& file_;
    int64_t number_;
};

std::string strip(std::string_view s)
{
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    size_t b = 0, e = s.size();
    while (b < e && isSpace(s[b]))
        ++b;
    while (e > b && isSpace(s[e - 1]))
        --e;
    return std::string(s.substr(b, e - b));
}

std::string replaceAll(std::string s, std::string_view from, std::string_view to)
{
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
        out.append(s, pos, hit - pos).append(to);
    return out.append(s, pos, std::string::npos);
}

// Multiple choice after one context: continuation i = delimiter + choice i.
TaskItem choiceItem(std::string context, std::vector<std::string> choices, int gold, const std::string& delimiter = " ")
{
    TaskItem item;
    item.contexts = {std::move(context)};
    for (const std::string& c : choices)
        item.continuations.push_back(delimiter + c);
    item.choices = std::move(choices);
    item.gold = gold;
    return item;
}

TaskItem hellaswagItem(const Line& l)
{
    // The harness: ctx = ctx_a + " " + ctx_b.capitalize(); query = preprocess(activity_label + ": " + ctx).
    const std::string ctx = l.has("ctx_a") && l.has("ctx_b") ? l.text("ctx_a") + " " + pythonCapitalize(l.text("ctx_b")) : l.text("ctx");
    const std::string query = hellaswagPreprocess(l.has("activity_label") ? l.text("activity_label") + ": " + ctx : ctx);
    std::vector<std::string> endings = l.texts(l.at("endings"), "endings");
    for (std::string& e : endings)
        e = hellaswagPreprocess(e);
    const int gold = l.index("label", static_cast<int>(endings.size()));
    return choiceItem(query, std::move(endings), gold);
}

TaskItem arcItem(const Line& l)
{
    const nlohmann::json& c = l.at("choices");
    if (!c.is_object() || !c.contains("text") || !c.contains("label"))
        l.bad("\"choices\" must hold \"text\" and \"label\"");
    std::vector<std::string> texts = l.texts(c["text"], "choices.text");
    const std::vector<std::string> labels = l.texts(c["label"], "choices.label");
    if (labels.size() != texts.size())
        l.bad("\"choices.text\" and \"choices.label\" differ in length");
    const std::string key = l.text("answerKey");
    const auto it = std::find(labels.begin(), labels.end(), key);
    if (it == labels.end())
        l.bad("answerKey \"" + key + "\" is not one of the choices' labels");
    return choiceItem("Question: " + l.text("question") + "\nAnswer:", std::move(texts), static_cast<int>(it - labels.begin()));
}

std::string mmluSubjectText(std::string subject) { return replaceAll(std::move(subject), "_", " "); }

TaskItem mmluItem(const std::string& question, const std::vector<std::string>& options, int answer, const std::string& subject)
{
    static const char* letters[] = {"A", "B", "C", "D"};
    std::string context = strip(question);
    for (size_t i = 0; i < options.size(); ++i)
        context += std::string("\n") + letters[i] + ". " + options[i];
    context += "\nAnswer:";
    TaskItem item = choiceItem(std::move(context), {"A", "B", "C", "D"}, answer);
    item.group = subject;
    if (!subject.empty())
        item.description = "The following are multiple choice questions (with answers) about " + mmluSubjectText(subject) + ".\n\n";
    return item;
}

int mmluAnswer(const Line& l, const nlohmann::json& v)
{
    if (v.is_string()) {
        const std::string& letter = v.get_ref<const std::string&>();
        if (letter.size() == 1 && letter[0] >= 'A' && letter[0] <= 'D')
            return letter[0] - 'A';
    }
    return l.index("answer", 4);
}

TaskItem mmluJsonItem(const Line& l)
{
    const std::vector<std::string> options = l.texts(l.at("choices"), "choices");
    if (options.size() != 4)
        l.bad("MMLU items have 4 choices, this one has " + std::to_string(options.size()));
    return mmluItem(l.text("question"), options, mmluAnswer(l, l.at("answer")), l.has("subject") ? l.text("subject") : "");
}

TaskItem piqaItem(const Line& l)
{
    std::vector<std::string> sols{l.text("sol1"), l.text("sol2")};
    return choiceItem("Question: " + l.text("goal") + "\nAnswer:", std::move(sols), l.index("label", 2));
}

TaskItem winograndeItem(const Line& l)
{
    // Partial scoring: each option completes the sentence's start, and the
    // shared rest of the sentence is what is scored.
    const std::string sentence = l.text("sentence");
    const size_t blank = sentence.find('_');
    if (blank == std::string::npos)
        l.bad("the sentence has no \"_\" to fill");
    const std::string answer = l.text("answer");
    if (answer != "1" && answer != "2")
        l.bad("\"answer\" must be 1 or 2");
    TaskItem item;
    for (const char* key : {"option1", "option2"})
        item.contexts.push_back(sentence.substr(0, blank) + l.text(key));
    item.continuations = {" " + strip(std::string_view(sentence).substr(blank + 1))};
    item.choices = item.contexts;
    item.gold = answer == "1" ? 0 : 1;
    return item;
}

TaskItem boolqItem(const Line& l)
{
    int gold = 0;
    if (l.has("label"))
        gold = l.index("label", 2);
    else if (l.at("answer").is_boolean())
        gold = l.at("answer").get<bool>() ? 1 : 0;
    else
        l.bad("\"answer\" must be true or false");
    return choiceItem(l.text("passage") + "\nQuestion: " + l.text("question") + "?\nAnswer:", {"no", "yes"}, gold);
}

TaskItem truthfulqaItem(const Line& l, const char* targetsKey, bool mc2)
{
    const nlohmann::json& t = l.at(targetsKey);
    if (!t.is_object() || !t.contains("choices") || !t.contains("labels") || !t["labels"].is_array())
        l.bad(std::string("\"") + targetsKey + "\" must hold \"choices\" and \"labels\"");
    std::vector<std::string> choices = l.texts(t["choices"], std::string(targetsKey) + ".choices");
    if (t["labels"].size() != choices.size())
        l.bad(std::string("\"") + targetsKey + ".labels\" and its choices differ in length");
    std::vector<int> trues;
    for (size_t i = 0; i < choices.size(); ++i) {
        const nlohmann::json& v = t["labels"][i];
        if (!v.is_number_integer() || (v.get<int64_t>() != 0 && v.get<int64_t>() != 1))
            l.bad(std::string("\"") + targetsKey + ".labels\" must be 0 or 1");
        if (v.get<int64_t>() == 1)
            trues.push_back(static_cast<int>(i));
    }
    if (trues.empty() || trues.size() == choices.size())
        l.bad(std::string("\"") + targetsKey + "\" needs true and false answers");
    if (!mc2 && trues.size() != 1)
        l.bad("MC1 has exactly one true answer");
    TaskItem item = choiceItem(std::string(kTruthfulQaPrimer) + "\n\nQ: " + l.text("question") + "\nA:", std::move(choices), trues[0]);
    if (mc2)
        item.trueChoices = std::move(trues);
    return item;
}

TaskItem lambadaItem(const Line& l)
{
    // The harness splits on single spaces: context = all words but the last,
    // continuation = " " + the last word, no further delimiter.
    const std::string text = l.text("text");
    const size_t space = text.rfind(' ');
    if (space == std::string::npos || space + 1 == text.size() || space == 0)
        l.bad("the text needs a context and a last word after a space");
    TaskItem item;
    item.contexts = {text.substr(0, space)};
    item.continuations = {text.substr(space)};
    item.choices = {text.substr(space + 1)};
    return item;
}

TaskItem genericItem(const Line& l)
{
    const char* contextKey = l.has("context") ? "context" : l.has("query") ? "query" : "question";
    std::vector<std::string> choices = l.texts(l.at("choices"), "choices");
    const char* labelKey = l.has("label") ? "label" : l.has("gold") ? "gold" : "answer";
    int gold = -1;
    const nlohmann::json& v = l.at(labelKey);
    const auto named = v.is_string() ? std::find(choices.begin(), choices.end(), v.get_ref<const std::string&>()) : choices.end();
    if (named != choices.end() && !isIndexText(*named))
        gold = static_cast<int>(named - choices.begin()); // the label is a choice's text
    else
        gold = l.index(labelKey, static_cast<int>(choices.size()));
    return choiceItem(l.text(contextKey), std::move(choices), gold);
}

TaskItem generationItem(std::string prompt, std::string reference, const std::string& delimiter = " ")
{
    TaskItem item;
    item.contexts = {std::move(prompt)};
    item.continuations = {delimiter + reference};
    item.choices = {std::move(reference)};
    return item;
}

TaskItem gsm8kItem(const Line& l)
{
    return generationItem("Question: " + l.text("question") + "\nAnswer:", l.text("answer"));
}

TaskItem generateItem(const Line& l, std::vector<std::string>& stop)
{
    const char* promptKey = l.has("prompt") ? "prompt" : l.has("question") ? "question" : "input";
    const char* answerKey = l.has("answer") ? "answer" : l.has("target") ? "target" : "output";
    if (l.has("stop"))
        stop = l.texts(l.at("stop"), "stop");
    return generationItem(l.text(promptKey), l.text(answerKey), "");
}

TaskItem refusalItem(const Line& l)
{
    const std::string expected = asciiLower(l.text("expected"));
    if (expected != "refuse" && expected != "comply")
        l.bad("\"expected\" must be refuse or comply");
    TaskItem item;
    item.contexts = {l.text("prompt")};
    item.continuations = {""};
    item.choices = {expected};
    item.gold = expected == "refuse" ? 1 : 0;
    return item;
}

// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines.
std::vector<std::vector<std::string>> parseCsv(const std::string& text, const std::string& file)
{
    std::vector<std::vector<std::string>> rows(1);
    std::string field;
    bool quoted = false, fieldStarted = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c == '"' && !fieldStarted) {
            quoted = fieldStarted = true;
        } else if (c == ',') {
            rows.back().push_back(std::move(field));
            field.clear();
            fieldStarted = false;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
                ++i;
            rows.back().push_back(std::move(field));
            field.clear();
            fieldStarted = false;
            rows.emplace_back();
        } else {
            field += c;
            fieldStarted = true;
        }
    }
    if (quoted)
        fail(ErrorCode::Malformed, file, "a quoted field is not closed before the end of the file");
    if (fieldStarted || !rows.back().empty())
        rows.back().push_back(std::move(field));
    rows.erase(std::remove_if(rows.begin(), rows.end(), [](const auto& r) { return r.empty() || (r.size() == 1 && r[0].empty()); }),
               rows.end());
    return rows;
}

Task mmluCsv(const std::string& path, const std::string& text)
{
    // The original files: <subject>_{dev,val,test}.csv, rows question,A,B,C,D,answer-letter, no header.
    std::string subject = std::filesystem::path(path).stem().string();
    for (const char* split : {"_test", "_dev", "_val"})
        if (subject.size() > std::string_view(split).size() && subject.ends_with(split))
            subject.resize(subject.size() - std::string_view(split).size());
    Task task;
    int64_t row = 0;
    for (const auto& r : parseCsv(text, path)) {
        ++row;
        if (r.size() != 6 || r[5].size() != 1 || r[5][0] < 'A' || r[5][0] > 'D')
            fail(ErrorCode::Malformed, path, "row " + std::to_string(row) + ": expected question,A,B,C,D,answer (A-D)");
        task.items.push_back(mmluItem(r[0], {r[1], r[2], r[3], r[4]}, r[5][0] - 'A', subject));
    }
    return task;
}

} // namespace

std::span<const TaskFormatInfo> taskFormats() { return kFormats; }

const TaskFormatInfo& taskFormatInfo(TaskFormat format)
{
    for (const TaskFormatInfo& f : kFormats)
        if (f.format == format)
            return f;
    return kFormats[0];
}

std::optional<TaskFormat> taskFormatNamed(std::string_view name)
{
    const std::string n = normalName(name);
    for (const TaskFormatInfo& f : kFormats)
        if (n == f.name)
            return f.format;
    static const std::pair<const char*, TaskFormat> aliases[] = {
        {"arc_easy", TaskFormat::Arc},          {"arc_challenge", TaskFormat::Arc},
        {"lambada_openai", TaskFormat::Lambada}, {"lambada_standard", TaskFormat::Lambada},
        {"truthfulqa", TaskFormat::TruthfulQaMc2}, {"multiple_choice", TaskFormat::MultipleChoice},
    };
    for (const auto& [alias, format] : aliases)
        if (n == alias)
            return format;
    return std::nullopt;
}

std::string hellaswagPreprocess(std::string_view text)
{
    std::string s = replaceAll(strip(text), " [title]", ". ");
    std::string out; // re.sub(r"\[.*?\]", "", s): drop every shortest bracketed run
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '[') {
            const size_t close = s.find(']', i + 1);
            if (close != std::string::npos) {
                i = close;
                continue;
            }
        }
        out += s[i];
    }
    return replaceAll(std::move(out), "  ", " ");
}

std::string pythonCapitalize(std::string_view text)
{
    std::string s = asciiLower(text);
    if (!s.empty())
        s[0] = asciiUpper(s.substr(0, 1))[0];
    return s;
}

Task loadTaskFile(TaskFormat format, const std::string& path)
{
    const std::string text = readInputFile(path, kMaxTextFileBytes, "the task file");
    const TaskFormatInfo& info = taskFormatInfo(format);
    Task task;
    if (format == TaskFormat::Mmlu && asciiLower(std::filesystem::path(path).extension().string()) == ".csv") {
        task = mmluCsv(path, text);
    } else {
        forEachJsonLine(text, path, std::string("a ") + info.name + " file has one item per line: " + info.fields,
                        [&](const nlohmann::json& j, int64_t number) {
            const Line l(j, path, number);
            switch (format) {
            case TaskFormat::HellaSwag: task.items.push_back(hellaswagItem(l)); break;
            case TaskFormat::Arc: task.items.push_back(arcItem(l)); break;
            case TaskFormat::Mmlu: task.items.push_back(mmluJsonItem(l)); break;
            case TaskFormat::Piqa: task.items.push_back(piqaItem(l)); break;
            case TaskFormat::WinoGrande: task.items.push_back(winograndeItem(l)); break;
            case TaskFormat::BoolQ: task.items.push_back(boolqItem(l)); break;
            case TaskFormat::TruthfulQaMc1: task.items.push_back(truthfulqaItem(l, "mc1_targets", false)); break;
            case TaskFormat::TruthfulQaMc2: task.items.push_back(truthfulqaItem(l, "mc2_targets", true)); break;
            case TaskFormat::Lambada: task.items.push_back(lambadaItem(l)); break;
            case TaskFormat::MultipleChoice: task.items.push_back(genericItem(l)); break;
            case TaskFormat::Gsm8k: task.items.push_back(gsm8kItem(l)); break;
            case TaskFormat::Generate: task.items.push_back(generateItem(l, task.generation.stop)); break;
            case TaskFormat::Refusal: task.items.push_back(refusalItem(l)); break;
            }
        });
    }
    if (task.items.empty())
        fail(ErrorCode::Malformed, path, std::string("no items in the file (a ") + info.name + " file has one JSON object per line: " + info.fields + ")");
    task.name = info.name;
    task.source = path;
    task.metric = format == TaskFormat::TruthfulQaMc2 ? TaskMetric::Mc2
                  : format == TaskFormat::Lambada    ? TaskMetric::LastWord
                  : format == TaskFormat::Refusal    ? TaskMetric::Refusal
                  : format == TaskFormat::Gsm8k || format == TaskFormat::Generate ? TaskMetric::ExactMatch
                                                     : TaskMetric::Choice;
    if (format == TaskFormat::Gsm8k) {
        // The harness's gsm8k: until "Question:" (and the chat end markers), two filters, exact_match
        // ignoring case, commas, dollar signs, everything up to "#### " and a final full stop.
        task.generation.stop = {"Question:", "</s>", "<|im_end|>"};
        task.generation.maxTokens = 256;
        task.generation.filters = {{"strict-match", "#### (-?[0-9.,]+)", false},
                                   {"flexible-extract", "(-?[$0-9.,]{2,})|(-?[0-9]+)", true}};
        task.generation.ignore = {",", "\\$", "[\\s\\S]*#### ", "\\.$"};
        task.generation.ignoreCase = true;
    } else if (format == TaskFormat::Refusal) {
        task.generation.stop = {};
        task.generation.maxTokens = 64;
        task.generation.refusalPhrases = defaultRefusalPhrases();
    }
    task.reportsAccNorm = std::string_view(info.metrics).find("acc_norm") != std::string_view::npos;
    return task;
}

std::vector<std::string> loadRefusalPhrases(const std::string& path)
{
    if (path.empty())
        return defaultRefusalPhrases();
    const std::string text = readInputFile(path, kMaxConfigFileBytes, "the refusal phrases");
    std::vector<std::string> phrases;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos)
            end = text.size();
        std::string line = strip(std::string_view(text).substr(pos, end - pos));
        if (!line.empty())
            phrases.push_back(std::move(line));
        pos = end + 1;
    }
    if (phrases.empty())
        fail(ErrorCode::Malformed, path, "no refusal phrases (one per line)");
    return phrases;
}

void forEachJsonLine(const std::string& text, const std::string& path, const std::string& hint,
                     const std::function<void(const nlohmann::json&, int64_t)>& fn)
{
    int64_t number = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos)
            end = text.size();
        const std::string_view raw(text.data() + pos, end - pos);
        pos = end + 1;
        ++number;
        if (strip(raw).empty())
            continue;
        const nlohmann::json j = nlohmann::json::parse(raw, nullptr, false);
        if (j.is_discarded() || !j.is_object())
            fail(ErrorCode::Malformed, path,
                 "line " + std::to_string(number) + " is not a JSON object" + (hint.empty() ? "" : " (" + hint + ")"));
        fn(j, number);
    }
}

std::optional<TaskFormat> guessTaskFormat(const std::string& path)
{
    const std::string ext = asciiLower(std::filesystem::path(path).extension().string());
    if (ext == ".csv")
        return TaskFormat::Mmlu;
    if (ext == ".yaml" || ext == ".yml")
        return std::nullopt;
    // Only the first line that is not blank is read: the whole file is read once, by loadTaskFile.
    requireRegularFile(path, kMaxTextFileBytes, "the task file");
    std::ifstream in(path, std::ios::binary);
    std::string line;
    while (std::getline(in, line) && strip(line).empty()) {
    }
    if (strip(line).empty())
        return std::nullopt;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return std::nullopt;
    const auto has = [&](const char* k) { return j.contains(k); };
    if (has("endings") || has("ctx_a"))
        return TaskFormat::HellaSwag;
    if (has("answerKey"))
        return TaskFormat::Arc;
    if (has("sol1"))
        return TaskFormat::Piqa;
    if (has("option1") && has("sentence"))
        return TaskFormat::WinoGrande;
    if (has("passage"))
        return TaskFormat::BoolQ;
    if (has("mc2_targets"))
        return TaskFormat::TruthfulQaMc2;
    if (has("mc1_targets"))
        return TaskFormat::TruthfulQaMc1;
    if (has("subject") && has("answer"))
        return TaskFormat::Mmlu;
    if (has("expected") && has("prompt"))
        return TaskFormat::Refusal;
    if (has("question") && has("answer") && j["answer"].is_string() && j["answer"].get<std::string>().find("####") != std::string::npos)
        return TaskFormat::Gsm8k;
    if (has("prompt") && (has("answer") || has("target") || has("output")))
        return TaskFormat::Generate;
    if (has("choices"))
        return TaskFormat::MultipleChoice;
    if (has("text"))
        return TaskFormat::Lambada;
    return std::nullopt;
}

Task loadTask(const std::string& name, const std::string& path)
{
    if (name.empty()) {
        const std::string ext = asciiLower(std::filesystem::path(path).extension().string());
        if (ext == ".yaml" || ext == ".yml")
            return loadTaskDefinition(path);
        const auto guessed = guessTaskFormat(path);
        if (!guessed)
            fail(ErrorCode::InvalidArgument, path, "cannot tell the task's format from its first line: name it (hellaswag=FILE, arc=FILE, ...)");
        Task t = loadTaskFile(*guessed, path);
        t.name = std::filesystem::path(path).stem().string();
        return t;
    }
    const auto format = taskFormatNamed(name);
    if (!format) {
        std::string known;
        for (const TaskFormatInfo& f : kFormats)
            known += (known.empty() ? "" : ", ") + std::string(f.name);
        fail(ErrorCode::InvalidArgument, path, "unknown task format \"" + name + "\" (known: " + known + ", or a task definition .yaml)");
    }
    Task t = loadTaskFile(*format, path);
    t.name = normalName(name);
    return t;
}

} // namespace ll
