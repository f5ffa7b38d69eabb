#pragma once
// RAII device memory and streams.
#include <kiln/core/error.hpp>
#include <kiln/cuda/runtime/context.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace kiln::cuda {

class stream {
 public:
  explicit stream(context_ptr ctx) : ctx_(std::move(ctx)) {
    ctx_->driver().check(ctx_->driver().api().StreamCreate(&handle_, 0), "cuStreamCreate");
  }
  ~stream() {
    if (handle_) ctx_->driver().api().StreamDestroy(handle_);
  }
  stream(stream&& o) noexcept : ctx_(std::move(o.ctx_)), handle_(std::exchange(o.handle_, nullptr)) {}
  stream& operator=(stream&&) = delete;
  stream(const stream&) = delete;

  void synchronize() const {
    ctx_->driver().check(ctx_->driver().api().StreamSynchronize(handle_), "cuStreamSynchronize");
  }
  cu_stream handle() const { return handle_; }

 private:
  context_ptr ctx_;
  cu_stream handle_ = nullptr;
};

// `bytes` of device memory, freed on destruction. Copies are synchronous (cuMemcpyHtoD/DtoH).
class device_buffer {
 public:
  device_buffer(context_ptr ctx, std::size_t bytes) : ctx_(std::move(ctx)), bytes_(bytes) {
    if (bytes_ > 0)
      ctx_->driver().check(ctx_->driver().api().MemAlloc(&ptr_, bytes_),
                           "cuMemAlloc(" + std::to_string(bytes_) + " bytes)");
  }
  ~device_buffer() {
    if (ptr_) ctx_->driver().api().MemFree(ptr_);
  }
  device_buffer(device_buffer&& o) noexcept
      : ctx_(std::move(o.ctx_)), ptr_(std::exchange(o.ptr_, 0)), bytes_(std::exchange(o.bytes_, 0)) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    std::swap(ctx_, o.ctx_);
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  device_buffer(const device_buffer&) = delete;

  // The device address, passed to kernels by value (a kernel's T* parameter).
  cu_deviceptr ptr() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }

  template <class T>
  void upload(std::span<const T> host) {
    static_assert(std::is_trivially_copyable_v<T>, "device_buffer::upload needs trivially copyable elements");
    require_size(host.size_bytes(), "upload");
    if (bytes_ > 0)
      ctx_->driver().check(ctx_->driver().api().MemcpyHtoD(ptr_, host.data(), bytes_),
                           "cuMemcpyHtoD(" + std::to_string(bytes_) + " bytes)");
  }
  template <class T>
  void download(std::span<T> host) const {
    static_assert(std::is_trivially_copyable_v<T>, "device_buffer::download needs trivially copyable elements");
    require_size(host.size_bytes(), "download");
    if (bytes_ > 0)
      ctx_->driver().check(ctx_->driver().api().MemcpyDtoH(host.data(), ptr_, bytes_),
                           "cuMemcpyDtoH(" + std::to_string(bytes_) + " bytes)");
  }
  void fill_bytes(unsigned char value) {
    if (bytes_ > 0) ctx_->driver().check(ctx_->driver().api().MemsetD8(ptr_, value, bytes_), "cuMemsetD8");
  }

 private:
  void require_size(std::size_t host_bytes, const char* what) const {
    if (host_bytes != bytes_)
      throw shape_error("device_buffer " + std::string(what) + ": the buffer holds " + std::to_string(bytes_) +
                        " bytes but the host range holds " + std::to_string(host_bytes));
  }
  context_ptr ctx_;
  cu_deviceptr ptr_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace kiln::cuda
