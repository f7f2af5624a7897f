#include "cluster/image.h"

namespace bulwark::cluster {

ImagePublisher::ImagePublisher(ImagePtr initial) : image_(std::move(initial)) {}

Status ImagePublisher::publish(ImagePtr next) {
  if (!next) return make_error(ErrorKind::invalid_argument, "cannot publish a null metadata image");
  ImagePtr current = image_.load(std::memory_order_acquire);
  // A loop rather than a store, so two publishers racing cannot move the image backwards.
  while (true) {
    if (next->offset() < current->offset()) {
      return make_error(ErrorKind::invalid_argument, "metadata image at offset " + std::to_string(next->offset()) +
                                                         " is behind the published one at " +
                                                         std::to_string(current->offset()));
    }
    if (image_.compare_exchange_weak(current, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
      return {};
    }
  }
}

}  // namespace bulwark::cluster
