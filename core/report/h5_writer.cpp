#include "report/h5_writer.h"

#include "util/error.h"

namespace ll::h5 {

namespace {

// HDF5's innermost message (the place the error was detected; for system
// errors it carries errno's text), or the outermost API call if none.
std::string hdf5Message()
{
    std::string msg;
    auto walk = [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::string*>(data);
        if (n == 0 && e && e->desc)
            *out = e->desc;
        return 0;
    };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk, &msg);
    H5Eclear2(H5E_DEFAULT);
    // System errors read "..., errno = 28, error message = 'No space left on device', ...": keep the text.
    const std::string key = "error message = '";
    if (const size_t at = msg.find(key); at != std::string::npos) {
        const size_t end = msg.find('\'', at + key.size());
        msg = msg.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
    }
    return msg.empty() ? std::string("unknown HDF5 error") : msg;
}

// Variable-length UTF-8 strings: h5py reads them as str.
Handle stringType()
{
    Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_cset(t.get(), H5T_CSET_UTF8);
    return t;
}

std::vector<const char*> cStrings(const std::vector<std::string>& values)
{
    std::vector<const char*> p;
    p.reserve(values.size());
    for (const auto& s : values)
        p.push_back(s.c_str());
    return p;
}

} // namespace

void Handle::reset()
{
    if (id_ >= 0 && closer_)
        closer_(id_);
    id_ = H5I_INVALID_HID;
}

herr_t Handle::close()
{
    herr_t rc = 0;
    if (id_ >= 0 && closer_)
        rc = closer_(id_);
    id_ = H5I_INVALID_HID;
    return rc;
}

QuietErrors::QuietErrors()
{
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

QuietErrors::~QuietErrors()
{
    // Records left on this thread's error stack are never freed when a worker
    // thread ends (HDF5 then complains at exit): drop them here.
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, func_, data_);
}

File::File(const std::string& displayName) : display_(displayName)
{
    Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "create file access properties"), H5Pclose);
    // Grows in 4 MiB steps; no backing store: nothing touches the disk.
    if (H5Pset_fapl_core(fapl.get(), 4 << 20, false) < 0)
        failed("set up an in-memory file");
    // STRONG: closing the file closes anything still open in it.
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    file_ = Handle(check(H5Fcreate(displayName.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), "create the file"),
                   H5Fclose);
}

std::vector<uint8_t> File::finish()
{
    if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0)
        failed("finish the file");
    const ssize_t n = H5Fget_file_image(file_.get(), nullptr, 0);
    if (n < 0)
        failed("take the file's image");
    std::vector<uint8_t> image(static_cast<size_t>(n));
    if (H5Fget_file_image(file_.get(), image.data(), image.size()) != n)
        failed("take the file's image");
    if (file_.close() < 0)
        failed("close the file");
    return image;
}

void File::failed(const std::string& what) const
{
    fail(ErrorCode::Io, display_, "HDF5 could not " + what + ": " + hdf5Message() + "; nothing was kept");
}

Handle File::group(hid_t parent, const std::string& name, bool trackOrder)
{
    Handle gcpl(check(H5Pcreate(H5P_GROUP_CREATE), "create group properties"), H5Pclose);
    if (trackOrder)
        H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    return Handle(check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
                        "create the group '" + name + "'"),
                  H5Gclose);
}

void File::rawAttr(hid_t obj, const std::string& name, hid_t fileType, hid_t memType, hid_t space, const void* data)
{
    Handle a(check(H5Acreate2(obj, name.c_str(), fileType, space, H5P_DEFAULT, H5P_DEFAULT),
                   "create the attribute '" + name + "'"),
             H5Aclose);
    if (H5Awrite(a.get(), memType, data) < 0)
        failed("write the attribute '" + name + "'");
}

void File::attr(hid_t obj, const std::string& name, const std::string& value)
{
    const Handle t = stringType();
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    const char* p = value.c_str();
    rawAttr(obj, name, t.get(), t.get(), space.get(), &p);
}

void File::attr(hid_t obj, const std::string& name, int64_t value)
{
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    rawAttr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value);
}

void File::attr(hid_t obj, const std::string& name, uint64_t value)
{
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    rawAttr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, space.get(), &value);
}

void File::attr(hid_t obj, const std::string& name, double value)
{
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    rawAttr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value);
}

void File::attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values)
{
    const hsize_t n = values.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    const int64_t none = 0;
    rawAttr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.empty() ? &none : values.data());
}

void File::attr(hid_t obj, const std::string& name, const std::vector<uint64_t>& values)
{
    const hsize_t n = values.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    const uint64_t none = 0;
    rawAttr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, space.get(), values.empty() ? &none : values.data());
}

void File::attr(hid_t obj, const std::string& name, const std::vector<std::string>& values)
{
    const Handle t = stringType();
    const hsize_t n = values.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    const auto p = cStrings(values);
    const char* none = "";
    rawAttr(obj, name, t.get(), t.get(), space.get(), p.empty() ? &none : p.data());
}

Handle File::rawDataset(hid_t parent, const std::string& name, hid_t fileType, hid_t memType, uint64_t n,
                        const void* data)
{
    const hsize_t dims = n;
    Handle space(check(H5Screate_simple(1, &dims, nullptr), "create a dataspace"), H5Sclose);
    Handle d(check(H5Dcreate2(parent, name.c_str(), fileType, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   "create the dataset '" + name + "'"),
             H5Dclose);
    if (n > 0 && H5Dwrite(d.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        failed("write the dataset '" + name + "'");
    return d;
}

Handle File::dataset(hid_t parent, const std::string& name, const std::vector<double>& values)
{
    return rawDataset(parent, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.size(), values.data());
}

Handle File::dataset(hid_t parent, const std::string& name, const std::vector<int64_t>& values)
{
    return rawDataset(parent, name, H5T_STD_I64LE, H5T_NATIVE_INT64, values.size(), values.data());
}

Handle File::dataset(hid_t parent, const std::string& name, const std::vector<uint8_t>& values)
{
    return rawDataset(parent, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, values.size(), values.data());
}

Handle File::dataset(hid_t parent, const std::string& name, const std::vector<std::string>& values)
{
    const Handle t = stringType();
    const auto p = cStrings(values);
    return rawDataset(parent, name, t.get(), t.get(), values.size(), p.data());
}

Handle File::stringDataset(hid_t parent, const std::string& name, const std::string& value)
{
    const Handle t = stringType();
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle d(check(H5Dcreate2(parent, name.c_str(), t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                   "create the dataset '" + name + "'"),
             H5Dclose);
    const char* p = value.c_str();
    if (H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0)
        failed("write the dataset '" + name + "'");
    return d;
}

} // namespace ll::h5
