from .latent_embedding_router import LatentEmbeddingRouter, RoutedQueries

__all__ = ['LatentEmbeddingRouter', 'RoutedQueries']
