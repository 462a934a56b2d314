// Packaging (installer/CMakeLists.txt): `cmake --install` of this build into a
// scratch prefix gives a layerlab-cli that runs on its own and the desktop
// entry and icon; `cpack` makes a .deb whose Depends came from dpkg-shlibdeps
// and a .tar.gz with the same files. cpack takes about 5 s here (the Ninja
// build has no preinstall step, so nothing is rebuilt); skipped when cpack or
// dpkg-deb is missing, or when this build has not built every installed target.
#include "test_support.h"

#include <QProcess>
#include <QStandardPaths>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;

namespace {

struct Run {
    int exitCode = -1;
    std::string out, err;
};

Run run(const QString& program, const QStringList& args, int timeoutMs = 120000)
{
    QProcess p;
    p.start(program, args);
    Run r;
    if (!p.waitForStarted(10000) || !p.waitForFinished(timeoutMs))
        return r;
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = p.readAllStandardOutput().toStdString();
    r.err = p.readAllStandardError().toStdString();
    return r;
}

// The build tree this test belongs to: the folder above layerlab-cli that holds CMakeCache.txt.
fs::path buildDir()
{
    for (fs::path p = fs::path(LAYERLAB_CLI_PATH).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
        if (fs::exists(p / "CMakeCache.txt"))
            return p;
    return {};
}

// NAME:TYPE=VALUE lines of CMakeCache.txt.
std::map<std::string, std::string> cmakeCache(const fs::path& build)
{
    std::map<std::string, std::string> cache;
    std::ifstream in(build / "CMakeCache.txt");
    for (std::string line; std::getline(in, line);) {
        const size_t colon = line.find(':'), eq = line.find('=');
        if (line.empty() || line[0] == '#' || line[0] == '/' || colon == std::string::npos || eq == std::string::npos || colon > eq)
            continue;
        cache[line.substr(0, colon)] = line.substr(eq + 1);
    }
    return cache;
}

bool isOn(const std::string& v)
{
    return v == "ON" || v == "1" || v == "TRUE" || v == "YES";
}

class TestInstaller : public QObject {
    Q_OBJECT

    fs::path build_;
    std::map<std::string, std::string> cache_;
    bool gui_ = false;

private slots:
    void initTestCase()
    {
        build_ = buildDir();
        if (build_.empty())
            QSKIP("no CMakeCache.txt above layerlab-cli");
        cache_ = cmakeCache(build_);
        gui_ = isOn(cache_["LAYERLAB_BUILD_GUI"]);
        // `cmake --install` copies built files; it never builds. A tree where only some targets were built cannot install.
        if (gui_ && !fs::exists(build_ / "app/layerlab"))
            QSKIP("this build has not built the GUI (layerlab); build every target first");
    }

    void installTree()
    {
        LL_REQUIRE_SHARED();
        const fs::path prefix = fs::path(ll::test::scratchDir()) / "prefix";
        const Run inst = run(QString::fromStdString(cache_["CMAKE_COMMAND"]),
                             {"--install", QString::fromStdString(build_.string()), "--prefix",
                              QString::fromStdString(prefix.string())});
        QVERIFY2(inst.exitCode == 0, (inst.out + inst.err).c_str());

        const fs::path cli = prefix / "bin/layerlab-cli";
        QVERIFY(fs::exists(cli));
        QCOMPARE(fs::exists(prefix / "bin/layerlab"), gui_);
        const Run version = run(QString::fromStdString(cli.string()), {"--version"});
        QCOMPARE(version.exitCode, 0);
        QCOMPARE(version.out, std::string("layerlab-cli " LAYERLAB_VERSION "\n"));
        const Run inspect = run(QString::fromStdString(cli.string()),
                                {"inspect", QString::fromStdString(ll::test::sharedPath("models/stories260K/stories260K.bin")),
                                 "--json"});
        QVERIFY2(inspect.exitCode == 0, inspect.err.c_str());
        QCOMPARE(nlohmann::json::parse(inspect.out).at("parameters").get<int64_t>(), int64_t{292800});

        if (!gui_)
            return; // the desktop entry and icon come with the GUI
        const std::string desktop = ll::test::readFile((prefix / "share/applications/layerlab.desktop").string());
        QVERIFY(desktop.find("[Desktop Entry]") == 0);
        QVERIFY(desktop.find("\nExec=layerlab ") != std::string::npos);
        QVERIFY(desktop.find("\nIcon=layerlab\n") != std::string::npos); // names the icon below
        const std::string icon = ll::test::readFile((prefix / "share/icons/hicolor/scalable/apps/layerlab.svg").string());
        QVERIFY(icon.find("<svg") != std::string::npos);
        const QString validate = QStandardPaths::findExecutable("desktop-file-validate");
        if (!validate.isEmpty()) {
            const Run v = run(validate, {QString::fromStdString((prefix / "share/applications/layerlab.desktop").string())});
            QVERIFY2(v.exitCode == 0, (v.out + v.err).c_str());
        }
    }

    void packages()
    {
        const std::string cpack = cache_["CMAKE_CPACK_COMMAND"];
        const QString dpkgDeb = QStandardPaths::findExecutable("dpkg-deb");
        if (cpack.empty() || !fs::exists(cpack) || dpkgDeb.isEmpty())
            QSKIP("cpack or dpkg-deb is missing");
        if (QStandardPaths::findExecutable("dpkg-shlibdeps").isEmpty())
            QSKIP("dpkg-shlibdeps is missing (apt-get install dpkg-dev)");
        const fs::path out = ll::test::scratchDir();
        const Run p = run(QString::fromStdString(cpack),
                          {"--config", QString::fromStdString((build_ / "CPackConfig.cmake").string()), "-B",
                           QString::fromStdString(out.string())},
                          300000);
        QVERIFY2(p.exitCode == 0, (p.out + p.err).c_str());

        fs::path deb, tgz; // layerlab_<version>_<arch>.deb, layerlab-<version>-Linux.tar.gz
        for (const auto& e : fs::directory_iterator(out)) {
            const std::string name = e.path().filename().string();
            if (name.starts_with("layerlab_" LAYERLAB_VERSION "_") && name.ends_with(".deb"))
                deb = e.path();
            if (name == "layerlab-" LAYERLAB_VERSION "-Linux.tar.gz")
                tgz = e.path();
        }
        QVERIFY2(!deb.empty() && !tgz.empty(), p.out.c_str());

        auto field = [&](const char* name) {
            const Run f = run(dpkgDeb, {"-f", QString::fromStdString(deb.string()), name});
            return f.exitCode == 0 ? QString::fromStdString(f.out).trimmed().toStdString() : std::string();
        };
        QCOMPARE(field("Package"), std::string("layerlab"));
        QCOMPARE(field("Version"), std::string(LAYERLAB_VERSION));
        // Generated by dpkg-shlibdeps from the binaries' NEEDED entries.
        const std::string depends = field("Depends");
        for (const char* lib : {"libc6", "libstdc++6", "libhdf5-"})
            QVERIFY2(depends.find(lib) != std::string::npos, depends.c_str());
        if (gui_)
            QVERIFY2(depends.find("libqt6widgets6") != std::string::npos, depends.c_str());

        const Run contents = run(dpkgDeb, {"-c", QString::fromStdString(deb.string())});
        QCOMPARE(contents.exitCode, 0);
        std::vector<std::string> expected{"./usr/bin/layerlab-cli"};
        if (gui_)
            expected.insert(expected.end(), {"./usr/bin/layerlab", "./usr/share/applications/layerlab.desktop",
                                             "./usr/share/icons/hicolor/scalable/apps/layerlab.svg"});
        for (const auto& path : expected)
            QVERIFY2(contents.out.find(" " + path + "\n") != std::string::npos, (path + "\n" + contents.out).c_str());

        // The unpacked package runs.
        const fs::path root = out / "unpacked";
        QCOMPARE(run(dpkgDeb, {"-x", QString::fromStdString(deb.string()), QString::fromStdString(root.string())}).exitCode, 0);
        QCOMPARE(run(QString::fromStdString((root / "usr/bin/layerlab-cli").string()), {"--version"}).exitCode, 0);

        const QString tar = QStandardPaths::findExecutable("tar");
        if (!tar.isEmpty()) {
            const Run t = run(tar, {"tzf", QString::fromStdString(tgz.string())});
            QCOMPARE(t.exitCode, 0);
            QVERIFY2(t.out.find("layerlab-" LAYERLAB_VERSION "-Linux/bin/layerlab-cli\n") != std::string::npos, t.out.c_str());
        }
    }
};

} // namespace

QTEST_GUILESS_MAIN(TestInstaller)
#include "test_installer.moc"
