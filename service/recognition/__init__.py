"""Face recognition: image decoding, the face model (detect, align, embed) and confidence."""
