"""Knowledge distillation (Hinton, Vinyals, Dean 2015) in plain PyTorch.

- ``kd_loss(student_logits, teacher_logits, y, temperature, alpha)``: Hinton's loss,
  ``alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) · CE(s, y)``;
- ``Distiller(student, teacher, temperature, alpha, hints)``: the training loss ``loss(model, x, y)``
  that ``edgeflow.training.fit`` takes, with optional hint (feature) losses between named layers
  (FitNets: MSE between the teacher's feature map and the student's, through a trainable 1×1
  adapter when the channel counts differ).
"""

from edgeflow.methods.distillation.kd import Distiller, kd_loss

__all__ = ["Distiller", "kd_loss"]
