from .loops import REFVLMTestLoop
from .train_loop import NothingToTrain, REFVLMTrainLoop

__all__ = ['NothingToTrain', 'REFVLMTestLoop', 'REFVLMTrainLoop']
