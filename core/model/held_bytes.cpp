#include "model/held_bytes.h"

#include <cmath>

namespace ll {

uint64_t heldBytes(const Model& m, const LogicalTensor& t)
{
    if (t.edited()) {
        uint64_t bytes = t.replacedBy >= 0 ? m.stored.at(static_cast<size_t>(t.replacedBy)).nbytes : 0;
        if (t.hasFactors())
            bytes += m.stored.at(static_cast<size_t>(t.factorA)).nbytes + m.stored.at(static_cast<size_t>(t.factorB)).nbytes;
        return bytes;
    }
    const TensorRef& ref = m.storedOf(t);
    const int64_t all = ref.elements();
    if (all <= 0 || all == t.elements())
        return ref.nbytes;
    return static_cast<uint64_t>(
        std::llround(static_cast<double>(ref.nbytes) * static_cast<double>(t.elements()) / static_cast<double>(all)));
}

} // namespace ll
