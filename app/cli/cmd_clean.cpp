// layerlab-cli clean [FOLDER...] [--remove]: the partial files and folders that
// exports killed outright left behind (util/atomic_file.h), listed with
// their sizes; --remove deletes them. Live exports' partials are never listed.
#include "args.h"
#include "commands.h"

#include "util/atomic_file.h"

#include <cstdio>
#include <filesystem>

namespace ll::cli {

int cmdClean(const std::vector<std::string>& argv)
{
    const Args a(argv, {}, {"remove"});
    std::vector<std::string> folders = a.positional();
    if (folders.empty())
        folders.push_back(".");
    const bool remove = a.flag("remove");
    int found = 0;
    uint64_t bytes = 0;
    for (const std::string& folder : folders) {
        if (!std::filesystem::is_directory(folder))
            throw UsageError("'" + folder + "' is not a folder");
        for (const StalePartial& p : findStalePartials(folder)) {
            std::error_code ec;
            if (remove)
                p.folder ? static_cast<void>(std::filesystem::remove_all(p.path, ec)) : static_cast<void>(std::filesystem::remove(p.path, ec));
            std::printf("%s%s%s  %.1f MB%s\n", remove && !ec ? "removed " : "", p.path.c_str(), p.folder ? "/" : "",
                        static_cast<double>(p.bytes) / 1e6, ec ? ("  (cannot remove: " + ec.message() + ")").c_str() : "");
            ++found;
            bytes += p.bytes;
        }
    }
    if (found == 0)
        std::printf("no partial files left by killed exports\n");
    else if (!remove)
        std::printf("%d partial file%s (%.1f MB) left by killed exports; --remove deletes them\n", found, found == 1 ? "" : "s",
                    static_cast<double>(bytes) / 1e6);
    return 0;
}

} // namespace ll::cli
