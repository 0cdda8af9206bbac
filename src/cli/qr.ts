import QRCode from 'qrcode'

/** A QR code of `text` in terminal block characters (two rows a line), for a phone camera to read. */
export function terminalQr(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'L' })
}

/** Writes a QR code of `text` as a PNG image to `path`. */
export function writeQrPng(path: string, text: string): Promise<void> {
  return QRCode.toFile(path, text, { type: 'png', errorCorrectionLevel: 'L', margin: 2, scale: 6 })
}
