"""Finding codes for `nnctl explain`: Vietnamese for every code, and English for a code that
nnctl.diagnostics.CATALOGUE does not (yet) describe. Same parts as the catalogue: title, why and try
(one clause each, no final period, as findings print them) and explain (a paragraph)."""

EN: dict[str, dict[str, str]] = {
    "ACTIVATION_COLLAPSE": {
        "title": "activations collapsing toward 0",
        "why": "the activations' standard deviation shrinks layer by layer toward 0, so the deep layers see almost "
               "no signal and the gradients vanish with it",
        "try": "use init: auto (Xavier or He) instead of a small fixed init_std, or add norm: batch / layer",
        "explain": "With a small fixed initial scale such as N(0, 0.01^2), each layer multiplies the spread of the "
                   "signal by about sqrt(fan_in) * init_std (and by 1 / sqrt(2) more for ReLU), far below 1 when "
                   "fan_in is 64. After a few layers the activations are all close to 0 and nearly equal: the "
                   "network computes almost the same output for every input. Backpropagation multiplies by the same "
                   "small weights on the way down, so the gradients shrink just as fast and training stalls at "
                   "chance. Xavier and He initialisation derive the scale from fan_in so that the std stays near 1 "
                   "through the layers; normalisation layers restore it at every layer.",
    },
}

VI: dict[str, dict[str, str]] = {
    "DEAD_RELU": {
        "title": "đơn vị ReLU chết",
        "why": "đơn vị có đầu vào trước kích hoạt âm với mọi mẫu sẽ luôn xuất ra 0 và nhận gradient bằng 0, nên "
               "không bao giờ hồi phục",
        "try": "giảm optimizer.lr, dùng init: auto (He), đặt bias_init dương nhỏ, hoặc đổi sang activation: "
               "leaky_relu / elu",
        "explain": "ReLU cho ra max(0, z). Nếu tổng có trọng số z của một đơn vị âm với mọi mẫu huấn luyện, đơn vị "
                   "đó xuất ra 0 ở khắp nơi và gradient của nó cũng bằng 0 ở khắp nơi, nên hạ gradient không còn "
                   "dịch chuyển được trọng số của nó nữa: đơn vị đã \"chết\". Chuyện này thường xảy ra khi một bước "
                   "cập nhật quá lớn (tốc độ học quá cao) đẩy trọng số về phía âm, hoặc khi bias được khởi tạo quá "
                   "âm. Một tầng có nhiều đơn vị chết thì năng lực thực sự nhỏ hơn nhiều so với số đơn vị của nó. "
                   "Cách chữa: giảm tốc độ học, khởi tạo He, bias_init hơi dương, hoặc một hàm kích hoạt có độ dốc "
                   "khác 0 khi z < 0 (leaky_relu, elu).",
    },
    "SATURATED": {
        "title": "đơn vị sigmoid/tanh bị bão hoà",
        "why": "đầu ra dính sát biên của sigmoid/tanh có đạo hàm gần 0, nên gần như không có gradient đi qua",
        "try": "chuẩn hoá đầu vào (standardize), dùng init: auto (Xavier), giảm tốc độ học, thêm norm: batch, hoặc "
               "dùng relu",
        "explain": "sigmoid và tanh phẳng dần khi |z| lớn: sigmoid(z) tiến về 0 hoặc 1, tanh(z) về -1 hoặc 1, và "
                   "đạo hàm ở đó gần bằng 0. Một đơn vị bão hoà hầu như không truyền gradient ngược lại, nên chính "
                   "nó và các tầng bên dưới học rất chậm. Bão hoà đến từ đầu vào chưa được chuẩn hoá, trọng số khởi "
                   "tạo quá lớn (khởi tạo He dành cho ReLU, còn Xavier mới dành cho sigmoid/tanh) hoặc tốc độ học "
                   "đẩy trọng số lên quá lớn. Chuẩn hoá theo lô đặt trước hàm kích hoạt giữ z trong vùng còn nhạy.",
    },
    "VANISHING_GRAD": {
        "title": "gradient biến mất",
        "why": "gradient của tầng đầu nhỏ hơn gradient của tầng cuối nhiều bậc độ lớn: các tầng đầu gần như không "
               "học",
        "try": "dùng hàm kích hoạt họ relu với khởi tạo He, bớt số tầng, hoặc thêm norm: batch / layer",
        "explain": "Trên đường đi xuống, lan truyền ngược nhân gradient với trọng số và đạo hàm hàm kích hoạt của "
                   "từng tầng. Với hàm kích hoạt bão hoà (đạo hàm của sigmoid không vượt quá 0.25) hoặc trọng số "
                   "nhỏ, tích này co lại theo cấp số nhân khi mạng sâu thêm, nên các tầng đầu gần như không nhận "
                   "được gradient và cứ nằm yên gần giá trị khởi tạo. nnctl so sánh chuẩn của gradient ở tầng đầu "
                   "và tầng cuối. Cách chữa: hàm kích hoạt họ ReLU với khởi tạo He, các tầng chuẩn hoá, hoặc một "
                   "mạng nông hơn.",
    },
    "EXPLODING_GRAD": {
        "title": "gradient bùng nổ",
        "why": "gradient của tầng đầu lớn hơn gradient của tầng cuối nhiều bậc độ lớn, hoặc gradient cực lớn",
        "try": "đặt optimizer.clip_grad_norm (ví dụ 1.0), giảm tốc độ học, kiểm tra thang khởi tạo, hoặc thêm "
               "chuẩn hoá",
        "explain": "Chính phép nhân làm gradient biến mất cũng có thể làm gradient lớn lên theo cấp số nhân khi "
                   "trọng số lớn: các tầng đầu nhận những bước cập nhật khổng lồ, việc huấn luyện mất ổn định hoặc "
                   "phân kỳ. Cắt chuẩn gradient (gradient clipping) giới hạn độ dài của mỗi bước; còn tốc độ học "
                   "nhỏ hơn, thang khởi tạo nhỏ hơn và các tầng chuẩn hoá thì loại bỏ nguyên nhân.",
    },
    "ACTIVATION_COLLAPSE": {
        "title": "kích hoạt co dần về 0",
        "why": "độ lệch chuẩn của các kích hoạt co lại qua từng tầng về gần 0, nên các tầng sâu hầu như không nhận "
               "được tín hiệu và gradient cũng biến mất theo",
        "try": "dùng init: auto (Xavier hoặc He) thay cho một init_std nhỏ cố định, hoặc thêm norm: batch / layer",
        "explain": "Với thang khởi tạo nhỏ và cố định như N(0, 0.01^2), mỗi tầng nhân độ phân tán của tín hiệu với "
                   "khoảng sqrt(fan_in) * init_std (và thêm 1 / sqrt(2) với ReLU), nhỏ hơn 1 rất nhiều khi fan_in "
                   "bằng 64. Sau vài tầng, các kích hoạt đều sát 0 và gần như bằng nhau: mạng cho ra gần như cùng "
                   "một đầu ra với mọi đầu vào. Lan truyền ngược nhân với chính những trọng số nhỏ ấy trên đường đi "
                   "xuống, nên gradient cũng co lại nhanh như thế và việc huấn luyện dậm chân ở mức đoán mò. Khởi "
                   "tạo Xavier và He chọn thang theo fan_in để độ lệch chuẩn giữ quanh 1 qua các tầng; các tầng "
                   "chuẩn hoá thì khôi phục nó ở từng tầng.",
    },
    "LR_TOO_SMALL": {
        "title": "tốc độ học quá nhỏ",
        "why": "hàm mất mát gần như không đổi và mỗi epoch chỉ thay đổi trọng số một phần rất nhỏ",
        "try": "tăng optimizer.lr (thử gấp 10 lần), hoặc chạy nnctl lr-find",
        "explain": "Hạ gradient dịch chuyển trọng số một lượng bằng lr nhân với gradient. Nếu lr quá nhỏ, mỗi bước "
                   "chỉ thay đổi trọng số một phần không đáng kể (tỉ lệ cập nhật/trọng số thấp hơn 1e-3 rất nhiều) "
                   "và đường cong mất mát gần như nằm ngang: muốn học xong sẽ cần nhiều epoch hơn gấp bội. Phép thử "
                   "dải tốc độ học (nnctl lr-find) cho biết tốc độ học lớn nhất mà hàm mất mát vẫn còn giảm đều.",
    },
    "LR_TOO_LARGE": {
        "title": "tốc độ học quá lớn",
        "why": "hàm mất mát tăng lên hoặc dao động thay vì giảm, và mỗi lần cập nhật chiếm một phần lớn của trọng số",
        "try": "giảm optimizer.lr (thử nhỏ hơn 10 lần), thêm lịch tốc độ học (schedule) hoặc khởi động dần "
               "(warmup), hoặc đặt clip_grad_norm",
        "explain": "Nếu tốc độ học quá lớn, mỗi bước lại nhảy vượt qua đáy thung lũng của hàm mất mát: hàm mất mát "
                   "vọt lên, dao động, hoặc phân kỳ ra vô cùng, và tỉ lệ cập nhật/trọng số lớn (một tỉ lệ lành mạnh "
                   "vào khoảng 1e-3). Hãy giảm tốc độ học, tăng dần nó trong vài epoch đầu (warmup), hoặc giảm dần "
                   "nó theo một lịch.",
    },
    "SYMMETRY": {
        "title": "các đơn vị đối xứng",
        "why": "mọi đơn vị của một tầng tính cùng một thứ, nên nhận cùng một gradient và mãi giống hệt nhau",
        "try": "dùng khởi tạo ngẫu nhiên (init: auto, he_normal, xavier_uniform) thay vì zeros",
        "explain": "Nếu mọi trọng số của một tầng bắt đầu bằng nhau (init: zeros), mọi đơn vị tính cùng một hàm, "
                   "nhận cùng một gradient và bước cùng một bước: tính đối xứng không bao giờ bị phá vỡ, và một tầng "
                   "64 đơn vị cư xử như một đơn vị duy nhất. Khởi tạo ngẫu nhiên phá vỡ đối xứng; còn thang của nó "
                   "(Xavier, He) giữ cho phương sai của tín hiệu ổn định từ tầng này sang tầng khác.",
    },
    "BAD_INIT_LOSS": {
        "title": "mất mát ban đầu bất thường",
        "why": "trước khi huấn luyện, hàm mất mát cách xa ln(số lớp), mức mất mát của một mạng chưa nghiêng về lớp "
               "nào",
        "try": "dùng thang khởi tạo nhỏ hơn (init: auto), chuẩn hoá đầu vào, và kiểm tra lại nhãn",
        "explain": "Một bộ phân loại vừa khởi tạo lẽ ra phải còn phân vân: với C lớp, softmax của nó gần như đều và "
                   "entropy chéo gần bằng ln C (ln 2 = 0.69 với hai lớp). Mất mát ban đầu lớn hơn nhiều nghĩa là "
                   "mạng khởi đầu bằng những dự đoán sai mà lại rất tự tin, thường vì trọng số hoặc đầu vào quá lớn. "
                   "Khi đó những epoch đầu bị phí vào việc gỡ lại phần khởi tạo, và các đơn vị có thể bị bão hoà.",
    },
    "HE_INIT_SATURATING": {
        "title": "khởi tạo He với hàm kích hoạt bão hoà",
        "why": "khởi tạo He nhân đôi phương sai vốn dành cho ReLU; với sigmoid/tanh nó đẩy các đơn vị về phía bão "
               "hoà",
        "try": "dùng init: auto (Xavier cho sigmoid/tanh)",
        "explain": "Khởi tạo He (Kaiming) lấy trọng số với phương sai 2 / fan_in, để bù cho việc ReLU triệt tiêu "
                   "khoảng một nửa đầu vào của nó. sigmoid và tanh không triệt tiêu gì cả, nên cùng thang đó làm giá "
                   "trị trước kích hoạt quá lớn và đẩy chúng vào vùng phẳng, bão hoà. Khởi tạo Xavier (phương sai "
                   "2 / (fan_in + fan_out)) mới được thiết kế cho chúng.",
    },
    "ZEROS_INIT": {
        "title": "khởi tạo trọng số bằng 0",
        "why": "khi mọi trọng số bằng 0, mọi đơn vị của một tầng học cùng một thứ (tính đối xứng không bao giờ bị "
               "phá vỡ)",
        "try": "dùng init: auto, he_normal hoặc xavier_uniform",
        "explain": "Xem SYMMETRY: trọng số bằng 0 làm mọi đơn vị trong một tầng giống hệt nhau, và các đơn vị giống "
                   "hệt nhau thì vẫn giống hệt nhau dưới hạ gradient. Riêng bias thì khởi tạo bằng 0 vẫn ổn, vì "
                   "trọng số ngẫu nhiên đã đủ phá vỡ đối xứng.",
    },
    "BATCHNORM_SMALL_BATCH": {
        "title": "chuẩn hoá theo lô với lô quá nhỏ",
        "why": "thống kê tính từ dưới 8 hàng rất nhiễu, nên việc huấn luyện bị nhiễu và thống kê trượt dùng lúc suy "
               "luận kém chính xác",
        "try": "dùng batch_size >= 32, hoặc norm: layer / group, vốn không phụ thuộc vào lô",
        "explain": "Chuẩn hoá theo lô chuẩn hoá từng đơn vị bằng trung bình và phương sai của lô hiện tại. Với chỉ "
                   "vài hàng, các ước lượng đó rất nhiễu: mỗi bước huấn luyện lại thấy một phép chuẩn hoá khác, và "
                   "thống kê trượt (running statistics) dùng lúc suy luận không khớp với lúc huấn luyện. Chuẩn hoá "
                   "theo tầng và theo nhóm tính thống kê bên trong từng hàng nên không phụ thuộc vào kích thước lô.",
    },
    "ADAM_HIGH_LR": {
        "title": "Adam với tốc độ học lớn",
        "why": "mỗi bước của Adam xấp xỉ lr cho từng tham số bất kể độ lớn của gradient; lr >= 0.1 thường vượt quá "
               "đích",
        "try": "dùng lr trong khoảng 1e-3 (mặc định) đến 1e-2 cho adam/adamw",
        "explain": "Adam chia mỗi gradient cho một ước lượng trượt của độ lớn của chính nó, nên mỗi tham số dịch "
                   "chuyển khoảng lr ở mỗi bước, dù gradient lớn hay nhỏ. Với lr = 0.1, mọi trọng số dịch chuyển "
                   "0.1 mỗi bước, quá lớn so với những trọng số có độ lớn thường gặp từ 0.1 đến 1; việc huấn luyện "
                   "dễ dao động hoặc phân kỳ. Giá trị mặc định 1e-3 của torch là điểm khởi đầu tốt.",
    },
    "MSE_CLASSIFICATION": {
        "title": "sai số bình phương trung bình cho bài toán phân loại",
        "why": "mse trên xác suất học chậm ở vùng sigmoid/softmax bão hoà: một đầu ra sai một cách tự tin gần như "
               "không nhận được gradient",
        "try": "dùng train.loss: auto (cross_entropy, hoặc bce khi có hai lớp), trừ khi bạn muốn tìm hiểu chính "
               "cặp mse này",
        "explain": "Với mse trên đầu ra sigmoid, tín hiệu lỗi của tầng đầu ra là 2 (p - y) p (1 - p) / n: khi đơn vị "
                   "bão hoà (p gần 0 hoặc 1), thừa số p (1 - p) gần bằng 0, nên một đầu ra SAI một cách tự tin hầu "
                   "như không được sửa. Với cross-entropy, tín hiệu lỗi là (p - y) / n: đạo hàm của hàm liên kết bị "
                   "triệt tiêu, và lỗi càng nặng thì bước cập nhật càng lớn. Cross-entropy còn là log-likelihood âm "
                   "của nhãn, nên xác suất nó cho ra đáng tin hơn. Cặp mse này là cặp kinh điển trong bài giảng (các "
                   "ví dụ lan truyền ngược tính tay dùng nó); mạng vẫn học được, chỉ thường chậm hơn.",
    },
}
