// Out-of-line pieces of pipeline.hpp: the destructor anchors PipelineScheduler's type
// information in libtrainer (dynamic_cast from plugins), and the action names.
#include "trainer/pipeline.hpp"

namespace trainer {

PipelineScheduler::~PipelineScheduler() = default;

const char* pipeline_action_name(PipelineAction::Kind kind) {
  switch (kind) {
    case PipelineAction::Kind::forward: return "forward";
    case PipelineAction::Kind::backward: return "backward";
    case PipelineAction::Kind::send_activation: return "send_activation";
    case PipelineAction::Kind::recv_activation: return "recv_activation";
    case PipelineAction::Kind::send_gradient: return "send_gradient";
    case PipelineAction::Kind::recv_gradient: return "recv_gradient";
  }
  return "unknown";
}

}  // namespace trainer
