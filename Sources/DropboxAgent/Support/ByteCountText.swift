import Delivery

/// Byte counts as Foundation's `ByteCountFormatter.string(fromByteCount:countStyle: .binary)` wrote them in mails
/// (`Zero KB`, `1 byte`, `1,023 bytes`, `2 KB`, `1.5 MB`, `4.66 GB`): binary multiples with the decimal unit
/// names, no decimals for KB, one for MB, two from GB up (trailing zeros dropped, ties to even), thousands
/// grouped with commas.
enum ByteCountText {
    static func binary(_ bytes: Int64) -> String {
        if bytes == 0 { return "Zero KB" }
        let sign = bytes < 0 ? "-" : ""
        let magnitude = bytes.magnitude
        if magnitude < 1024 { return sign + grouped(String(magnitude)) + (magnitude == 1 ? " byte" : " bytes") }
        let units = ["KB", "MB", "GB", "TB", "PB", "EB"]
        var unit = 0
        var value = Double(magnitude) / 1024
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let digits = min(unit, 2)
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale).rounded(.toNearestOrEven)
        let whole = UInt64(scaled / scale)
        let fraction = Int((scaled - Double(whole) * scale).rounded())
        var fractionText = ""
        if digits > 0, fraction > 0 {
            fractionText = CivilTime.digits(fraction, digits)
            while fractionText.hasSuffix("0") { fractionText.removeLast() }
            fractionText = "." + fractionText
        }
        return sign + grouped(String(whole)) + fractionText + " " + units[unit]
    }

    /// `1234567` → `1,234,567`.
    private static func grouped(_ digits: String) -> String {
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return out
    }
}
