"""The mitigation half of Neural Cleanse: unlearning, pruning and input filtering with reversed triggers."""
