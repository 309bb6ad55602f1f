//! `ppml-gemm`: a safe f32 matrix product, `dst = (dst or 0) + lhs × rhs`, over the kernels of the
//! [`gemm`] crate (the crate and version candle already uses), for ppml's plain engine.
//!
//! `gemm::gemm` takes raw pointers with row and column strides and trusts them. This crate's views
//! check once, when they are made, that every element they address lies inside their slice
//! ([`MatRef::new`], [`MatMut::new`]) and, for the destination, that no two elements share an
//! address; [`matmul`] then checks that the three shapes agree and calls the kernel with nothing
//! left to trust. That call is the crate's only `unsafe` block.
//!
//! # The one `unsafe` block
//!
//! Why: `gemm`'s kernels (runtime-dispatched AVX-512/AVX2/NEON micro-kernels with operand packing,
//! the ones candle uses) are reachable only through `gemm::gemm`, an `unsafe fn` over raw pointers
//! and strides; the engine's own safe loops before this crate were 1.45x (batch 100) to 8x (one
//! image) slower (README, "The comparison"), and the plain engine is the yardstick of every
//! slowdown ppml reports. This is the workspace's only crate that does not forbid
//! `unsafe_code` (its `Cargo.toml` denies it instead, and the block carries an `#[expect]` with
//! the reason), so the exception is confined to this file.
//!
//! What the call requires, and where each requirement is checked:
//! - every element `(i, j)`, `i < rows`, `j < cols`, of each operand lies inside its allocation:
//!   [`MatRef::new`] and [`MatMut::new`] check `(rows-1)*row_stride + (cols-1)*col_stride < len`
//!   with overflow-checked arithmetic, and the views' fields are private, so no view exists that
//!   failed the check ([`MatRef::transpose`] only swaps the two dimensions with their strides);
//! - the strides fit an `isize`: each is at most the last index of a slice (or set to 1 for a
//!   dimension of extent 1), and a slice never holds more than `isize::MAX` bytes;
//! - the destination has no two elements at one address (the kernel writes them concurrently):
//!   [`MatMut::new`] refuses such strides ([`GemmError::Aliased`]);
//! - the shapes agree (`m x k` by `k x n` into `m x n`): [`matmul`] checks them before the call,
//!   and returns early on empty products, which the kernel is not asked to handle;
//! - the destination does not overlap an operand: `dst` holds a `&mut [f32]` while `lhs` and
//!   `rhs` hold `&[f32]`, so the borrow checker rules it out.
//!
//! The tests compare [`matmul`] with a triple loop on random shapes, strides and transposes
//! (proptest) and check that every refused view is refused with the right error.
//!
//! The kernel is chosen at run time for the CPU (AVX-512, AVX2 with FMA, NEON or scalar). Strided
//! views need no copy by the caller: the kernel packs its operands into its own layout, so a
//! transposed weight matrix ([`MatRef::transpose`]) is multiplied as it is stored. That packing is
//! a strided gather, though (15% of `mlp`'s time at batch 100 in one profile), so the engine lays
//! its dense layers' outputs out feature-major, where the kernel reads row-major weights unpacked.
//!
//! ```
//! use ppml_gemm::{matmul, MatMut, MatRef, Threads};
//! let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
//! let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
//! let mut c = [10.0, 20.0, 30.0, 40.0]; // accumulated into
//! matmul(
//!     MatMut::row_major(&mut c, 2, 2)?,
//!     true,
//!     MatRef::row_major(&a, 2, 3)?,
//!     MatRef::row_major(&b, 3, 2)?,
//!     Threads::Current,
//! )?;
//! assert_eq!(c, [14.0, 25.0, 40.0, 51.0]);
//! # Ok::<(), ppml_gemm::GemmError>(())
//! ```

use thiserror::Error;

/// Why a view or a product was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum GemmError {
    /// The view addresses an element past the end of its slice (or its last index overflows).
    #[error(
        "a {rows}x{cols} view with strides ({row_stride}, {col_stride}) reaches past its {len} elements"
    )]
    OutOfBounds {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance between two rows, in elements.
        row_stride: usize,
        /// Distance between two columns, in elements.
        col_stride: usize,
        /// Length of the slice.
        len: usize,
    },
    /// A destination view whose strides make two of its elements the same address.
    #[error(
        "a {rows}x{cols} destination with strides ({row_stride}, {col_stride}) addresses some element twice"
    )]
    Aliased {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance between two rows, in elements.
        row_stride: usize,
        /// Distance between two columns, in elements.
        col_stride: usize,
    },
    /// The shapes do not make a product: `lhs` is `m x k`, `rhs` must be `k x n`, `dst` `m x n`.
    #[error("cannot multiply {lhs:?} by {rhs:?} into {dst:?} (rows, columns)")]
    Shape {
        /// `(rows, cols)` of the left operand.
        lhs: (usize, usize),
        /// `(rows, cols)` of the right operand.
        rhs: (usize, usize),
        /// `(rows, cols)` of the destination.
        dst: (usize, usize),
    },
}

/// The dimensions and strides of a view, validated against a slice length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl Layout {
    /// Checks that every element lies within `len`; strides of a dimension of extent 1 are unused
    /// and set to 1 so that they always fit an `isize`.
    fn new(
        len: usize,
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, GemmError> {
        let err = GemmError::OutOfBounds {
            rows,
            cols,
            row_stride,
            col_stride,
            len,
        };
        if rows > 0 && cols > 0 {
            let last = (rows - 1)
                .checked_mul(row_stride)
                .zip((cols - 1).checked_mul(col_stride))
                .and_then(|(r, c)| r.checked_add(c));
            if last.is_none_or(|last| last >= len) {
                return Err(err);
            }
        }
        Ok(Self {
            rows,
            cols,
            row_stride: if rows > 1 { row_stride } else { 1 },
            col_stride: if cols > 1 { col_stride } else { 1 },
        })
    }

    /// True when no two elements share an address: along the smaller stride the elements stay
    /// apart, and one step of the larger stride clears the whole extent of the smaller.
    fn is_injective(&self) -> bool {
        if self.is_empty() {
            return true;
        }
        let dims = [(self.rows, self.row_stride), (self.cols, self.col_stride)];
        let mut spans: Vec<(usize, usize)> = dims.into_iter().filter(|&(n, _)| n > 1).collect();
        spans.sort_by_key(|&(_, s)| s);
        match spans[..] {
            [] => true,
            [(_, s)] => s > 0,
            [(n_small, s_small), (_, s_big)] => {
                s_small > 0 && n_small.checked_mul(s_small).is_some_and(|e| s_big >= e)
            }
            _ => false,
        }
    }

    fn is_empty(&self) -> bool {
        self.rows == 0 || self.cols == 0
    }

    /// The strides as `gemm` takes them; they fit because each is at most the last index (or 1).
    fn strides(&self) -> (isize, isize) {
        let fit = |s: usize| isize::try_from(s).unwrap_or(isize::MAX);
        (fit(self.row_stride), fit(self.col_stride))
    }
}

/// A read-only matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    layout: Layout,
}

impl<'a> MatRef<'a> {
    /// A `rows x cols` view of `data` with the given strides (in elements).
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, GemmError> {
        let layout = Layout::new(data.len(), rows, cols, row_stride, col_stride)?;
        Ok(Self { data, layout })
    }

    /// A row-major `rows x cols` view of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, GemmError> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no copy).
    pub fn transpose(self) -> Self {
        let l = self.layout;
        Self {
            data: self.data,
            layout: Layout {
                rows: l.cols,
                cols: l.rows,
                row_stride: l.col_stride,
                col_stride: l.row_stride,
            },
        }
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.layout.rows, self.layout.cols)
    }
}

/// A mutable matrix view whose elements are all distinct: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    layout: Layout,
}

impl<'a> MatMut<'a> {
    /// A `rows x cols` view of `data` with the given strides (in elements); refused if an element
    /// falls outside `data` or two elements share an address.
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, GemmError> {
        let layout = Layout::new(data.len(), rows, cols, row_stride, col_stride)?;
        if !layout.is_injective() {
            return Err(GemmError::Aliased {
                rows,
                cols,
                row_stride,
                col_stride,
            });
        }
        Ok(Self { data, layout })
    }

    /// A row-major `rows x cols` view of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self, GemmError> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.layout.rows, self.layout.cols)
    }
}

/// Which threads a product may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Only the calling thread (for callers that already split their work across threads).
    Current,
    /// The current rayon pool; gemm splits a product only when it is large enough to gain.
    Pool,
}

/// `dst = lhs × rhs`, or `dst += lhs × rhs` when `accumulate` is true.
pub fn matmul(
    dst: MatMut<'_>,
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    threads: Threads,
) -> Result<(), GemmError> {
    let (m, k) = lhs.shape();
    let n = rhs.shape().1;
    if rhs.shape().0 != k || dst.shape() != (m, n) {
        return Err(GemmError::Shape {
            lhs: lhs.shape(),
            rhs: rhs.shape(),
            dst: dst.shape(),
        });
    }
    if dst.layout.is_empty() {
        return Ok(());
    }
    if k == 0 {
        // An empty sum: gemm would leave `dst` as it is, which is right only when accumulating.
        if !accumulate {
            zero(dst);
        }
        return Ok(());
    }
    let (dst_rs, dst_cs) = dst.layout.strides();
    let (lhs_rs, lhs_cs) = lhs.layout.strides();
    let (rhs_rs, rhs_cs) = rhs.layout.strides();
    let parallelism = match threads {
        Threads::Current => gemm::Parallelism::None,
        Threads::Pool => gemm::Parallelism::Rayon(0),
    };
    #[expect(
        unsafe_code,
        reason = "gemm's kernel takes raw pointers: the views were checked to stay inside their \
                  slices (MatRef::new, MatMut::new), the destination's elements are distinct, the \
                  shapes agree (checked above), and `dst` is borrowed mutably while `lhs` and \
                  `rhs` are shared borrows, so nothing it reads can alias what it writes"
    )]
    // SAFETY: see the reason above; every index the kernel forms, `i * row_stride + j *
    // col_stride` with `i < rows` and `j < cols`, is in bounds of the view's slice.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst_cs,
            dst_rs,
            accumulate,
            lhs.data.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.data.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Sets every element of the view to zero.
fn zero(dst: MatMut<'_>) {
    let l = dst.layout;
    for i in 0..l.rows {
        for j in 0..l.cols {
            if let Some(v) = dst.data.get_mut(i * l.row_stride + j * l.col_stride) {
                *v = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
