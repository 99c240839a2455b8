"""Import every op family so each registers its handlers in the op table."""
from lazytensor.onnx import (ops_attention, ops_control, ops_elementwise, ops_index,  # noqa: F401
                             ops_loss, ops_lowprecision, ops_misc, ops_nn, ops_quant, ops_reduce,
                             ops_resize, ops_rnn, ops_shape)
