// Bits of the device error word: kernels that find bad data they cannot throw on (token or
// target ids that live on the device) set a bit, and the host reports it at its next sync.
#pragma once

namespace trainer::gpu {

enum DeviceError : unsigned {
  kBadTokenForward = 1u,   // embedding_forward: a token outside [0, vocab)
  kBadTokenBackward = 2u,  // embedding_backward: a token outside [0, vocab)
  kBadTarget = 4u,         // crossentropy: a target >= V
};

}  // namespace trainer::gpu
