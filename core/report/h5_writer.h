#pragma once
// A thin layer over HDF5's C API for the report writer: handles that close
// themselves, typed attributes and 1-D datasets, and every failure turned into
// an ll::Error naming the file the user asked for (not the partial one). Only
// core/report includes this header (HDF5's include folder is private to core).
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ll::h5 {

// An HDF5 identifier closed by the matching H5?close on destruction.
class Handle {
public:
    using Closer = herr_t (*)(hid_t);
    Handle() = default;
    Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
    ~Handle() { reset(); }
    Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
    Handle& operator=(Handle&& o) noexcept
    {
        if (this != &o) {
            reset();
            id_ = o.id_;
            closer_ = o.closer_;
            o.id_ = H5I_INVALID_HID;
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    hid_t get() const { return id_; }
    void reset();
    // Closes now and reports failure (the only close whose result matters is the file's).
    herr_t close();

private:
    hid_t id_ = H5I_INVALID_HID;
    Closer closer_ = nullptr;
};

// While alive, HDF5 does not print its error stack to stderr (we turn it into
// an ll::Error instead). Process-wide: hold it only under the report mutex.
class QuietErrors {
public:
    QuietErrors();
    ~QuietErrors();
    QuietErrors(const QuietErrors&) = delete;
    QuietErrors& operator=(const QuietErrors&) = delete;

private:
    H5E_auto2_t func_ = nullptr;
    void* data_ = nullptr;
};

// An HDF5 file built in memory (HDF5's core driver); errors name `displayName`.
// In memory because HDF5 1.10 cannot close a file whose flush failed (its ID
// stays open and the library crashes at exit): the finished image is written
// to disk by LayerLab's own atomic writer instead, whose errors are ours.
// A report is small next to the model it describes (a mask is 1 bit a weight).
class File {
public:
    explicit File(const std::string& displayName);
    hid_t root() const { return file_.get(); }
    // Flushes, takes the file's bytes and closes it.
    std::vector<uint8_t> finish();

    // A new group below `parent`; trackOrder keeps the creation order for readers that iterate.
    Handle group(hid_t parent, const std::string& name, bool trackOrder = false);

    void attr(hid_t obj, const std::string& name, const std::string& value);
    void attr(hid_t obj, const std::string& name, const char* value) { attr(obj, name, std::string(value)); }
    void attr(hid_t obj, const std::string& name, int64_t value);
    void attr(hid_t obj, const std::string& name, uint64_t value);
    void attr(hid_t obj, const std::string& name, int value) { attr(obj, name, static_cast<int64_t>(value)); }
    void attr(hid_t obj, const std::string& name, bool value) = delete; // say int64 or uint8 explicitly
    void attr(hid_t obj, const std::string& name, double value);
    void attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values);
    void attr(hid_t obj, const std::string& name, const std::vector<uint64_t>& values);
    void attr(hid_t obj, const std::string& name, const std::vector<std::string>& values);

    // 1-D datasets (little-endian on disk whatever the machine).
    Handle dataset(hid_t parent, const std::string& name, const std::vector<double>& values);
    Handle dataset(hid_t parent, const std::string& name, const std::vector<int64_t>& values);
    Handle dataset(hid_t parent, const std::string& name, const std::vector<uint8_t>& values);
    Handle dataset(hid_t parent, const std::string& name, const std::vector<std::string>& values);
    // A scalar variable-length UTF-8 string dataset (no 64 KiB attribute limit).
    Handle stringDataset(hid_t parent, const std::string& name, const std::string& value);

    // Throws Io naming the file: "HDF5 could not <what>: <HDF5's innermost message>".
    [[noreturn]] void failed(const std::string& what) const;
    hid_t check(hid_t id, const std::string& what) const
    {
        if (id < 0)
            failed(what);
        return id;
    }

private:
    Handle rawDataset(hid_t parent, const std::string& name, hid_t fileType, hid_t memType, uint64_t n, const void* data);
    void rawAttr(hid_t obj, const std::string& name, hid_t fileType, hid_t memType, hid_t space, const void* data);
    std::string display_;
    Handle file_;
};

} // namespace ll::h5
