"""PyTorch at the edge: autograd Functions that use losskit's analytic gradients, and
``nn.Module`` wrappers.  Importing this module imports torch."""
