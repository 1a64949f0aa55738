// A move-only callable that keeps a callable of up to N bytes in place.
//
// std::function keeps only 16 bytes in place (and only for trivially
// copyable callables); a lambda holding a shared_ptr and another
// std::function, the usual completion, goes to the heap. A shared read
// queues one completion per check due in its window, a hundred every
// 100 ms at 1,000 checks, and the allocation and its first touches were a
// tenth of wardend's CPU there. A larger callable is still accepted, on
// the heap.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace warden {

template <typename Sig, std::size_t N = 48>
class InlineFunction;

template <typename R, typename... A, std::size_t N>
class InlineFunction<R(A...), N> {
 public:
  InlineFunction() = default;
  InlineFunction(std::nullptr_t) {}

  template <typename F, typename T = std::decay_t<F>,
            typename = std::enable_if_t<!std::is_same_v<T, InlineFunction> &&
                                        std::is_invocable_r_v<R, T&, A...>>>
  InlineFunction(F&& f) {  // NOLINT(google-explicit-constructor): as std::function
    if constexpr (kInPlace<T>) {
      ::new (static_cast<void*>(buf_)) T(std::forward<F>(f));
    } else {
      ::new (static_cast<void*>(buf_)) T*(new T(std::forward<F>(f)));
    }
    ops_ = &kOps<T>;
  }

  InlineFunction(InlineFunction&& o) noexcept { Take(o); }
  InlineFunction& operator=(InlineFunction&& o) noexcept {
    if (this != &o) {
      Reset();
      Take(o);
    }
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { Reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  R operator()(A... a) { return ops_->call(buf_, std::forward<A>(a)...); }

  // For tests: whether a callable of type F is kept in place.
  template <typename F>
  static constexpr bool kInPlace =
      sizeof(F) <= N &&
      alignof(F) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<F>;

 private:
  struct Ops {
    R (*call)(void* self, A&&... a);
    void (*move)(void* to, void* from);  // `from` is left destroyed
    void (*destroy)(void* self);
  };

  template <typename T>
  static T& Get(void* self) {
    if constexpr (kInPlace<T>) {
      return *std::launder(static_cast<T*>(self));
    } else {
      return **std::launder(static_cast<T**>(self));
    }
  }

  template <typename T>
  static constexpr Ops kOps = {
      [](void* self, A&&... a) -> R { return Get<T>(self)(std::forward<A>(a)...); },
      [](void* to, void* from) {
        if constexpr (kInPlace<T>) {
          T& f = Get<T>(from);
          ::new (to) T(std::move(f));
          f.~T();
        } else {
          ::new (to) T*(*std::launder(static_cast<T**>(from)));
        }
      },
      [](void* self) {
        if constexpr (kInPlace<T>) {
          Get<T>(self).~T();
        } else {
          delete *std::launder(static_cast<T**>(self));
        }
      },
  };

  void Take(InlineFunction& o) {
    if (!o.ops_) return;
    o.ops_->move(buf_, o.buf_);
    ops_ = o.ops_;
    o.ops_ = nullptr;
  }
  void Reset() {
    if (!ops_) return;
    const Ops* ops = ops_;
    ops_ = nullptr;
    ops->destroy(buf_);
  }

  alignas(std::max_align_t) unsigned char buf_[N < sizeof(void*) ? sizeof(void*) : N];
  const Ops* ops_ = nullptr;
};

}  // namespace warden
