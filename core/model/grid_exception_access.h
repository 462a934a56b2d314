#pragma once
// Reading one packed grid row's exceptions (model/packed_grid.h: dense
// columns, then outlier slots), shared by the decoders' overwrite and the
// integer dots' sum, so that the slot encoding is read in one place.
#include "model/packed_grid.h"

#include <cstdint>
#include <cstring>

namespace ll {

// Calls f(column, value) for each of the row's exceptions: the dense columns
// in order, then the used outlier slots (they come first; column -1 ends them).
template <class F>
inline void forEachGridException(const GridLayout& L, const uint8_t* row, F&& f)
{
    const uint8_t* dense = row + L.denseOffset();
    for (size_t k = 0; k < L.denseColumns.size(); ++k) {
        float v;
        std::memcpy(&v, dense + k * 4, 4);
        f(static_cast<int64_t>(L.denseColumns[k]), v);
    }
    const uint8_t* slots = row + L.outlierOffset();
    for (int64_t k = 0; k < L.outlierSlots; ++k) {
        int32_t c;
        std::memcpy(&c, slots + k * 8, 4);
        if (c < 0)
            break;
        float v;
        std::memcpy(&v, slots + k * 8 + 4, 4);
        f(static_cast<int64_t>(c), v);
    }
}

} // namespace ll
