"""Neural-network building blocks shared by encoders and decoders."""
